"""Edit operations: triggers, remove, replace, respell, sort by frequency."""

import pytest

from lora_bakery.extension.dataset.tags.edit import (
    add_triggers,
    compose,
    deduplicate,
    remove_separator,
    remove_tags,
    replace_tags,
    respell,
    sort_by_frequency,
)
from lora_bakery.extension.dataset.tags.match import PatternError
from lora_bakery.extension.dataset.tags.parse import join_tags, split_tags
from lora_bakery.extension.dataset.tags.stats import tag_frequency


def run(op, caption):
    tags = split_tags(caption)
    before = list(tags)
    out = join_tags(op(tags))
    assert tags == before, "operations must not change their argument"
    return out


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("1girl, solo", "CharaA, OutfitB, ||| 1girl, solo"),
        ("1girl, outfitb, solo, CharaA", "CharaA, OutfitB, ||| 1girl, solo"),
        ("", "CharaA, OutfitB, |||"),
        ("Old, ||| 1girl", "CharaA, OutfitB, Old, ||| 1girl"),
        ("1girl, ||| charaa, x", "CharaA, OutfitB, 1girl, ||| x"),
    ],
)
def test_add_triggers_front_in_order_with_separator(caption, expected):
    assert run(add_triggers("CharaA, OutfitB"), caption) == expected


def test_add_triggers_moves_existing_and_is_idempotent():
    op = add_triggers(["CharaA", "OutfitB"])
    once = run(op, "x, OutfitB, y, CharaA ||| z")
    assert once == "CharaA, OutfitB, x, y, ||| z"
    assert run(op, once) == once
    assert run(add_triggers("T", separator=False), "a, T, b") == "T, a, b"
    assert run(add_triggers(""), "a, b") == "a, b"
    assert run(add_triggers("T, T, |||"), "a") == "T, ||| a"


def test_remove_tags_exact_glob_regex():
    caption = "1girl, meme, sailor_moon_redraw_challenge_(meme), long hair, artist:foo, |||, x"
    assert (
        run(remove_tags(["meme", "*_redraw_challenge_(meme)"]), caption)
        == "1girl, long hair, artist:foo, ||| x"
    )
    assert (
        run(remove_tags("long_hair, re:artist:.*"), caption)
        == "1girl, meme, sailor_moon_redraw_challenge_(meme), ||| x"
    )
    assert run(remove_tags("re:.*"), caption) == "|||"
    with pytest.raises(PatternError):
        remove_tags(["re:[unclosed"])


def test_replace_tags():
    op = replace_tags(
        {"bow": "red_bowtie", "armor": "pauldron, gorget", "shiny_skin": "", "re:(.+)_hair": r"\1 hair"}
    )
    assert (
        run(op, "bow, armor, shiny_skin, long_hair, smile")
        == "red_bowtie, pauldron, gorget, long hair, smile"
    )
    # A replacement already present is not duplicated; the first occurrence stays.
    assert run(replace_tags({"tiara": "circlet"}), "tiara, smile, circlet") == "circlet, smile"
    assert run(replace_tags({"tiara": "circlet"}), "circlet, smile, tiara") == "circlet, smile"
    # Other repeats are left for deduplicate().
    assert run(replace_tags({"tiara": "circlet"}), "a, a, smile") == "a, a, smile"
    assert run(replace_tags({"T": "U"}), "T, ||| a") == "U, ||| a"


def test_deduplicate_and_remove_separator():
    assert run(deduplicate(), "a, long_hair, long hair, a, ||| b") == "a, long_hair, ||| b"
    assert run(deduplicate(loose=False), "a, long_hair, long hair, a") == "a, long_hair, long hair"
    assert run(remove_separator(), "T, ||| a, ||| b") == "T, a, b"


def test_respell_leaves_triggers_alone():
    op = respell(underscores="spaces", escape=True, lowercase=True)
    assert (
        run(op, "My_Trigger, ||| Long_Hair, ^_^, name_(series), long hair")
        == "My_Trigger, ||| long hair, ^_^, name \\(series\\)"
    )
    once = run(op, "A_b, ^_^, x_(y)")
    assert run(op, once) == once


def test_sort_by_frequency_keeps_triggers_first():
    captions = ["a, b, c", "b, c", "c", "c, b"]
    freq = tag_frequency([split_tags(c) for c in captions], loose=True)
    op = sort_by_frequency(freq, triggers=["T"])
    assert run(op, "a, b, c") == "c, b, a"
    assert run(op, "a, T, zz, c, yy") == "T, c, a, yy, zz"  # ties (0) alphabetical
    assert run(op, "X, ||| a, b, c") == "X, ||| c, b, a"
    assert run(op, "X, ||| a, c, ||| b, a") == "X, ||| c, a, ||| b, a"
    assert run(op, "X, ||| a, b, ||| a, c, ||| b, c") == "X, ||| b, a, ||| c, a, ||| b, c"  # tail fixed
    assert run(sort_by_frequency(freq, skip_fixed=False), "a, c, ||| b, c") == "c, a, ||| c, b"
    once = run(op, "a, T, b, c")
    assert run(op, once) == once


def test_compose_runs_in_order():
    op = compose(remove_tags(["meme"]), add_triggers("T"), respell(underscores="spaces"))
    assert run(op, "meme, long_hair") == "T, ||| long hair"
