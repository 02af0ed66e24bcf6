"""kohya caption processing: each step and the order of the steps, against hand-computed results."""

from __future__ import annotations

import random

import pytest

from lora_bakery.trainer.data.captions import (
    CaptionError,
    CaptionOptions,
    process_caption,
    read_caption,
    tag_frequency,
)


def run(caption, seed=0, **opts):
    return process_caption(caption, CaptionOptions(**opts), random.Random(seed))


def test_no_options_keeps_the_first_line_and_the_text():
    assert run("a,  b,c\nsecond line") == "a,  b,c"


def test_prefix_and_suffix_join_with_a_space_and_take_part_in_the_split():
    # kohya joins with " ", so the prefix merges into the first tag unless it ends with a separator
    assert run("a, b", caption_prefix="sks") == "sks a, b"
    out = run(
        "a, b, c", caption_prefix="sks,", caption_suffix=", end", keep_tokens=1, shuffle_caption=True, seed=1
    )
    fixed, *rest = out.split(", ")
    assert fixed == "sks" and sorted(rest) == ["a", "b", "c", "end"]


def test_caption_dropout_draws_first_then_shuffle():
    caption = "a, b, c, d, e"
    for seed in range(20):
        rng = random.Random(seed)
        dropped = rng.random() < 0.5  # hand computation: step 2 draws one number first ...
        tags = ["a", "b", "c", "d", "e"]
        rng.shuffle(tags)  # ... then step 4 shuffles with the same stream
        expected = "" if dropped else ", ".join(tags)
        assert run(caption, seed=seed, caption_dropout_rate=0.5, shuffle_caption=True) == expected


def test_dropout_every_n_epochs():
    opts = CaptionOptions(caption_dropout_every_n_epochs=2)
    assert process_caption("a, b", opts, random.Random(0), epoch=2) == ""
    assert process_caption("a, b", opts, random.Random(0), epoch=3) == "a, b"


def test_keep_tokens_then_shuffle_then_tag_dropout():
    caption = "t1, t2, a, b, c, d"
    for seed in range(10):
        rng = random.Random(seed)
        flex = ["a", "b", "c", "d"]
        rng.shuffle(flex)
        flex = [t for t in flex if rng.random() >= 0.3]
        expected = ", ".join(["t1", "t2"] + flex)
        got = run(caption, seed=seed, keep_tokens=2, shuffle_caption=True, caption_tag_dropout_rate=0.3)
        assert got == expected


def test_keep_tokens_separator_fixed_flexible_and_fixed_suffix():
    caption = "CharaA, OutfitB, ||| red_eyes, black_hair, smile ||| masterpiece, best"
    for seed in range(10):
        rng = random.Random(seed)
        flex = ["red_eyes", "black_hair", "smile"]
        rng.shuffle(flex)
        expected = ", ".join(["CharaA", "OutfitB"] + flex + ["masterpiece", "best"])
        # the separator wins over keep_tokens
        assert (
            run(caption, seed=seed, keep_tokens_separator="|||", shuffle_caption=True, keep_tokens=5)
            == expected
        )


def test_separator_never_reaches_the_text_encoder_even_without_token_operations():
    # kohya splits only under shuffle/warmup/tag dropout and otherwise tokenizes "|||" as text;
    # we always split on it (issue 12), and leave captions without it untouched
    assert run("trigger, ||| a, b", keep_tokens_separator="|||") == "trigger, a, b"
    assert run("trigger, ||| a ||| tail") == "trigger, a, tail"  # "|||" is the default separator
    assert run("a,b ,  c") == "a,b ,  c"  # nothing to split: exactly as read, like kohya
    assert run("a ||| b", keep_tokens_separator="") == "a ||| b"  # off: build_plan refuses such captions


def test_token_warmup_acts_on_the_flexible_part_before_the_shuffle():
    opts = CaptionOptions(keep_tokens=1, token_warmup_min=1, token_warmup_step=10)
    # step 0: floor(0 * (4-1)/10) + 1 = 1 flexible tag; step 5: floor(5*3/10)+1 = 2; step 10: warmup over
    assert process_caption("k, a, b, c, d", opts, random.Random(0), step=0) == "k, a"
    assert process_caption("k, a, b, c, d", opts, random.Random(0), step=5) == "k, a, b"
    assert process_caption("k, a, b, c, d", opts, random.Random(0), step=10) == "k, a, b, c, d"
    frac = CaptionOptions(token_warmup_step=0.5, token_warmup_min=2)  # half of 20 steps = 10
    assert (
        process_caption("a, b, c, d, e, f", frac, random.Random(0), step=5, max_train_steps=20)
        == "a, b, c, d"
    )
    # truncation happens before shuffling: only the first tags can appear
    shuffled = CaptionOptions(token_warmup_step=10, token_warmup_min=2, shuffle_caption=True)
    for seed in range(10):
        assert sorted(process_caption("a, b, c, d", shuffled, random.Random(seed), step=0).split(", ")) == [
            "a",
            "b",
        ]


def test_secondary_separator_moves_as_one_tag_then_becomes_the_separator():
    caption = "k, red;;;eyes, b, c"
    for seed in range(10):
        rng = random.Random(seed)
        flex = ["red;;;eyes", "b", "c"]
        rng.shuffle(flex)
        expected = ", ".join(["k"] + flex).replace(";;;", ",")
        assert (
            run(caption, seed=seed, keep_tokens=1, shuffle_caption=True, secondary_separator=";;;")
            == expected
        )
    assert run("a;;;b", secondary_separator=";;;") == "a,b"


def test_custom_caption_separator():
    out = run("k. a. b", caption_separator=".", keep_tokens=1, shuffle_caption=True, seed=2)
    assert out.startswith("k, ") and sorted(out.split(", ")[1:]) == ["a", "b"]


def test_wildcards():
    caption = "{red|blue} dress, {{literal}}\nsecond {x|y}"
    for seed in range(10):
        rng = random.Random(seed)
        line = rng.choice(caption.split("\n"))
        expected = (
            f"{rng.choice(['red', 'blue'])} dress, {{literal}}"
            if line.startswith("{")
            else f"second {rng.choice(['x', 'y'])}"
        )
        assert run(caption, seed=seed, enable_wildcard=True) == expected


def test_read_caption(tmp_path):
    img = tmp_path / "a.png"
    (tmp_path / "a.txt").write_text("\ufefftag1, tag2\nsecond\n", encoding="utf-8")
    assert read_caption(img) == "tag1, tag2"
    assert read_caption(img, enable_wildcard=True) == "tag1, tag2\nsecond"
    assert read_caption(img, ".caption") is None
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    assert read_caption(tmp_path / "empty.png") is None
    # face-crop suffix fallback: x_10_20_30_40.png reads x.txt
    (tmp_path / "x.txt").write_text("face", encoding="utf-8")
    assert read_caption(tmp_path / "x_10_20_30_40.png") == "face"


def test_non_utf8_caption_names_the_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes("caf\xe9, tag".encode("latin-1"))
    with pytest.raises(CaptionError, match="bad.txt.*UTF-8"):
        read_caption(tmp_path / "bad.png")


def test_tag_frequency():
    assert tag_frequency(["A, b", "a,, c ", ""]) == {"a": 2, "b": 1, "c": 1}
