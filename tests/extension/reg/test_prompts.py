"""Captions → prompts: triggers and un-regulated tags removed, separators and duplicates cleaned."""

from __future__ import annotations

import pytest

from lora_bakery.extension.dataset.tags.match import PatternError
from lora_bakery.extension.reg.prompts import as_patterns, class_from_folder, make_prompt, suggest_triggers


def test_triggers_separator_and_duplicate_commas_are_cleaned():
    p = make_prompt("chara, outfit1, ||| 1girl,, red_hair, smile, smile", ["chara", "outfit1"])
    assert p.caption == "1girl, red_hair, smile" and p.prompt == p.caption
    assert p.removed == ("chara", "outfit1")


def test_patterns_spellings_prefix_suffix_and_escaping():
    p = make_prompt("Chara, long hair, hatsune_miku_(vocaloid), x_meme", ["chara", "long_hair", "*_meme"],
                    prefix="masterpiece, best quality", suffix="simple background", escape_parentheses=True)
    assert p.caption == "hatsune_miku_(vocaloid)"
    assert p.prompt == "masterpiece, best quality, hatsune_miku_\\(vocaloid\\), simple background"
    assert set(p.removed) == {"Chara", "long hair", "x_meme"}
    assert make_prompt("a, b", ["re:^[ab]$"]).caption == ""
    with pytest.raises(PatternError):
        make_prompt("a", ["re:("])


def test_empty_after_stripping_gives_no_prompt_even_with_a_prefix():
    p = make_prompt("chara, |||", ["chara"], prefix="masterpiece")
    assert (p.caption, p.prompt) == ("", "")


def test_suggestions_and_helpers():
    captions = ["chara, outfit1, ||| 1girl", "chara, ||| smile", "chara, 1girl", "1girl, chara"]
    assert suggest_triggers(captions) == ["chara", "outfit1"]
    assert suggest_triggers([]) == []
    assert class_from_folder("SailorMoon_1girl") == "1girl" and class_from_folder("sks 1girl") == "1girl"
    assert class_from_folder("chara") == ""
    assert as_patterns("a, b\nc, |||, a") == ["a", "b", "c"]
