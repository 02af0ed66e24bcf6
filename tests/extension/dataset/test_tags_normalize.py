"""Spelling: underscores/spaces with kaomoji kept, escaped parentheses, case, duplicates."""

import pytest

from lora_bakery.extension.dataset.tags.normalize import (
    KAOMOJI,
    duplicated,
    escape_parens,
    normalize_tag,
    normalize_tags,
    remove_duplicates,
    spaces_to_underscores,
    tag_key,
    underscores_to_spaces,
    unescape_parens,
)
from lora_bakery.extension.dataset.tags.parse import KEEP


def test_kaomoji_list_is_the_reference_list():
    assert len(KAOMOJI) == 19
    assert {"^_^", ">_<", "(o)_(o)", "||_||", "<|>_<|>", "0_0"} <= KAOMOJI


@pytest.mark.parametrize(
    ("tag", "spaced"),
    [
        ("long_hair", "long hair"),
        ("^_^", "^_^"),
        (">_<", ">_<"),
        ("(o)_(o)", "(o)_(o)"),
        ("\\(o\\)_\\(o\\)", "\\(o\\)_\\(o\\)"),
        ("||_||", "||_||"),
        ("o_o", "o_o"),
        ("hatsune_miku_(append)", "hatsune miku (append)"),
        ("already spaced", "already spaced"),
    ],
)
def test_underscores_to_spaces(tag, spaced):
    assert underscores_to_spaces(tag) == spaced
    assert underscores_to_spaces(spaced) == spaced


def test_spaces_to_underscores():
    assert spaces_to_underscores("long  hair ") == "long_hair"
    assert spaces_to_underscores("^_^") == "^_^"


def test_escape_and_unescape_are_idempotent():
    assert escape_parens("name_(series)") == "name_\\(series\\)"
    assert escape_parens("name_\\(series\\)") == "name_\\(series\\)"
    assert escape_parens(escape_parens("(o)_(o)")) == "\\(o\\)_\\(o\\)"
    assert unescape_parens("name_\\(series\\)") == "name_(series)"
    assert unescape_parens("name_(series)") == "name_(series)"
    assert escape_parens("plain") == "plain"


def test_tag_key():
    assert tag_key("Long_Hair") == tag_key("long hair") == tag_key(" long   hair ") == "long hair"
    assert tag_key("name_\\(series\\)") == tag_key("name (series)") == "name (series)"


@pytest.mark.parametrize("underscores", ["keep", "spaces", "underscores"])
@pytest.mark.parametrize("escape", [None, True, False])
@pytest.mark.parametrize("lowercase", [False, True])
def test_normalize_is_idempotent(underscores, escape, lowercase):
    tags = ["Long_Hair", "^_^", "name_(series)", "a\\(b\\)", "blue  eyes", "X_X", "日本_語", KEEP, "T_rig"]
    once = normalize_tags(tags, underscores, escape, lowercase, skip_fixed=False)
    assert normalize_tags(once, underscores, escape, lowercase, skip_fixed=False) == once
    assert KEEP in once


def test_normalize_tag_examples():
    assert normalize_tag("Long_Hair", "spaces", lowercase=True) == "long hair"
    assert normalize_tag("name (series)", "underscores", escape=True) == "name_\\(series\\)"
    assert normalize_tag("^_^", "spaces") == "^_^"
    with pytest.raises(ValueError, match="underscores"):
        normalize_tag("a", "dashes")


def test_normalize_skips_fixed_part_and_protected():
    tags = ["Yellow_short_Kimono", KEEP, "long_hair", "My_Trigger"]
    out = normalize_tags(tags, "spaces", lowercase=True)
    assert out == ["Yellow_short_Kimono", KEEP, "long hair", "my trigger"]
    out = normalize_tags(tags, "spaces", lowercase=True, protect=["my_trigger"])
    assert out == ["Yellow_short_Kimono", KEEP, "long hair", "My_Trigger"]


def test_remove_duplicates_keeps_first_and_order():
    tags = ["a", "long_hair", "b", "long hair", "a", KEEP, KEEP, "c"]
    assert remove_duplicates(tags) == ["a", "long_hair", "b", KEEP, KEEP, "c"]
    assert remove_duplicates(tags, loose=False) == ["a", "long_hair", "b", "long hair", KEEP, KEEP, "c"]
    assert remove_duplicates([]) == []
    assert duplicated(tags) == ["a", "long_hair"]
    assert duplicated(["x", "y"]) == []
