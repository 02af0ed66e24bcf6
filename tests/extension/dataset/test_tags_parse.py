"""Caption text ↔ tag list, with kohya's ``|||`` keep-tokens separator."""

import random

import pytest

from lora_bakery.extension.dataset.tags.parse import (
    KEEP,
    fixed_mask,
    join_tags,
    partition,
    split_tags,
    unpartition,
)


@pytest.mark.parametrize(
    ("caption", "tags"),
    [
        ("1girl, solo, long_hair", ["1girl", "solo", "long_hair"]),
        ("1girl,solo ,  long hair ", ["1girl", "solo", "long hair"]),
        ("", []),
        ("   ", []),
        (", , ,\n,", []),
        ("a,,b,", ["a", "b"]),
        ("a\nb\r\nc", ["a", "b", "c"]),
        ("a, b\n", ["a", "b"]),
        ("CharaA, OutfitB, ||| red_eyes, black_hair", ["CharaA", "OutfitB", KEEP, "red_eyes", "black_hair"]),
        ("CharaA ||| red_eyes", ["CharaA", KEEP, "red_eyes"]),
        ("CharaA,|||,red_eyes", ["CharaA", KEEP, "red_eyes"]),
        ("a, ||| b, ||| c", ["a", KEEP, "b", KEEP, "c"]),
        ("||| a", [KEEP, "a"]),
        ("a, |||", ["a", KEEP]),
        ("|||", [KEEP]),
        ("name_\\(series\\), smile", ["name_\\(series\\)", "smile"]),
        ("a\\, b, c", ["a\\, b", "c"]),
        ("^_^, >_<, ||_||, <|>_<|>", ["^_^", ">_<", "||_||", "<|>_<|>"]),
        ("café, 日本, 🙂", ["café", "日本", "🙂"]),
    ],
)
def test_split_tags(caption, tags):
    assert split_tags(caption) == tags


@pytest.mark.parametrize(
    ("tags", "caption"),
    [
        ([], ""),
        (["a"], "a"),
        (["a", "b"], "a, b"),
        (["a", KEEP, "b"], "a, ||| b"),
        ([KEEP, "b"], "||| b"),
        (["a", KEEP], "a, |||"),
        (["a", KEEP, "b", KEEP, "c"], "a, ||| b, ||| c"),
        (["a", "", "b"], "a, b"),
    ],
)
def test_join_tags(tags, caption):
    assert join_tags(tags) == caption


def test_round_trip_of_clean_captions():
    rng = random.Random(0)
    words = ["long_hair", "blue eyes", "name_\\(series\\)", "^_^", "1girl", "日本", "a\\, b", "x"]
    for _ in range(300):
        tags = [rng.choice(words) for _ in range(rng.randrange(0, 8))]
        for _ in range(rng.randrange(0, 3)):
            tags.insert(rng.randrange(0, len(tags) + 1), KEEP)
        caption = join_tags(tags)
        assert split_tags(caption) == [t for t in tags if t]
        assert join_tags(split_tags(caption)) == caption


def test_partition_and_fixed_mask():
    assert partition(["a", "b"]) == ([], ["a", "b"], [])
    tags = ["T", KEEP, "a", "b"]
    assert partition(tags) == (["T"], ["a", "b"], [])
    assert fixed_mask(tags) == [True, True, False, False]
    tags2 = ["T", KEEP, "a", KEEP, "z"]
    assert partition(tags2) == (["T"], ["a"], ["z"])
    assert fixed_mask(tags2) == [True, True, False, True, True]
    tags3 = ["T", KEEP, "a", KEEP, "b", KEEP, "z"]
    assert partition(tags3) == (["T"], ["a", KEEP, "b"], ["z"])
    for t in (["a"], tags, tags2, tags3):
        assert unpartition(t, *partition(t)) == t
    assert fixed_mask([]) == []
