"""Tag patterns: exact, ``*`` glob, ``re:`` regex."""

import pytest

from lora_bakery.extension.dataset.tags.match import PatternError, compile_patterns, filter_tags
from lora_bakery.extension.dataset.tags.parse import KEEP


def test_exact_matches_by_key():
    m = compile_patterns(["long_hair", "name_(series)"])
    assert m.matches("long hair") and m.matches("Long_Hair") and m.matches("long_hair")
    assert m.matches("name_\\(series\\)")
    assert not m.matches("very_long_hair")
    assert m.which("long hair") == "long_hair"


def test_question_marks_and_brackets_are_literal():
    m = compile_patterns(["?", "[a]"])
    assert m.matches("?") and not m.matches("x")
    assert m.matches("[a]") and not m.matches("a")


def test_glob():
    m = compile_patterns(["*_redraw_challenge_(meme)", "bad_*_id"])
    assert m.matches("sailor_moon_redraw_challenge_(meme)")
    assert m.matches("sailor moon redraw challenge \\(meme\\)")
    assert m.matches("bad_pixiv_id")
    assert not m.matches("meme")
    assert m.which("bad_twitter_id") == "bad_*_id"


def test_regex_on_raw_tag_and_key():
    m = compile_patterns(["re:^(artist|series):.+$", "re:.*_HAIR"])
    assert m.matches("artist:someone") and m.matches("Series:thing")
    assert not m.matches("re:zero_kara_hajimeru_isekai_seikatsu")
    assert not m.matches(":d") and not m.matches(">:)")
    assert m.matches("long_hair")
    with pytest.raises(PatternError, match="not a valid regular expression"):
        compile_patterns(["re:("])


def test_keep_never_matches_and_blank_patterns():
    m = compile_patterns(["re:.*", "", "  "])
    assert not m.matches(KEEP)
    assert m.patterns == ("re:.*",)
    assert not compile_patterns([])
    assert filter_tags(["a", "b", KEEP], compile_patterns(["b"])) == ["b"]
