"""Consolidation and synonyms: proposals with reasons, never silent."""

from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset
from lora_bakery.extension.dataset.tags.consolidate import (
    contained,
    implications,
    merge_rules,
    redundancy_rules,
    specialize_rules,
)
from lora_bakery.extension.dataset.tags.defaults import SynonymTable, synonym_table
from lora_bakery.extension.dataset.tags.rules import apply_rules
from lora_bakery.extension.dataset.tags.synonyms import spell_like, synonym_rules


def lists(*captions):
    return list(parse_dataset({str(i): c for i, c in enumerate(captions)}).values())


def test_contained_words_and_suffix():
    vocab = [
        "shirt",
        "white_shirt",
        "shirt_lift",
        "long_hair",
        "very_long_hair",
        "hair",
        "no_shirt",
        "solo",
        "solo_focus",
    ]
    words = contained(vocab)
    assert words["white_shirt"] == ["shirt"]
    assert words["shirt_lift"] == ["shirt"]
    assert words["very_long_hair"] == ["hair", "long_hair"]
    assert "no_shirt" not in words  # deny: no_* does not imply
    assert "solo_focus" not in words  # deny pair
    suffix = contained(vocab, match="suffix")
    assert "shirt_lift" not in suffix
    assert suffix["white_shirt"] == ["shirt"]
    assert implications(vocab)["shirt"] == ["white_shirt"]


def test_redundancy_rules_shirt_white_shirt():
    data = lists(
        "1girl, shirt, white_shirt",
        "shirt, smile",
        "long_hair, very_long_hair, shirt, white_shirt",
        "no_shirt, shirt",
    )
    rules = redundancy_rules(data)
    assert [(r.describe(), r.count) for r in rules] == [
        ("shirt → (removed) where white_shirt", 2),
        ("long_hair → (removed) where very_long_hair", 1),
    ]
    assert all(r.kind == "redundant" and r.reason for r in rules)
    captions = {"a": "1girl, shirt, white_shirt", "b": "shirt, smile", "c": "long_hair, very_long_hair"}
    changed = apply_to_dataset(captions, apply_rules(rules))
    assert changed == {
        "a": ("1girl, shirt, white_shirt", "1girl, white_shirt"),
        "c": ("long_hair, very_long_hair", "very_long_hair"),
    }


def test_specialize_lone_generic():
    data = lists(
        "shirt, smile",
        "white_shirt",
        "white_shirt, shirt",
        "bow",
        "bow, red_bowtie",
        "hat",
        "red_hat, hat",
        "blue_hat",
    )
    rules = specialize_rules(data)
    assert [(r.describe(), r.count) for r in rules] == [("shirt → white_shirt unless white_shirt", 1)]
    assert "only more specific form" in rules[0].reason
    # hat has two specific forms: no automatic rule, the user chooses.
    chosen = specialize_rules(data, choose={"hat": "red_hat", "bow": "red_bowtie"})
    described = {r.describe() for r in chosen}
    assert "hat → red_hat unless blue_hat, red_hat" in described
    assert "bow → red_bowtie unless red_bowtie" in described


def test_merge_rules_protect_hair_and_stop_words():
    data = lists(
        "white_dress, turtleneck_dress, long_hair, blonde_hair",
        "white_dress, smile",
        "holding_sword, long_sword, open_mouth, open_jacket, black_jacket",
    )
    rules = merge_rules(data)
    assert [r.describe() for r in rules] == ["white_dress, turtleneck_dress → white_turtleneck_dress"]
    op = apply_rules(rules)
    assert op(data[0]) == ["white_turtleneck_dress", "long_hair", "blonde_hair"]


def test_synonym_aliases_and_pick_one():
    data = lists("blond_hair, tiara, circlet", "circlet", "tiara, smile", "blond hair", "circlet, tiara")
    rules = synonym_rules(data)
    described = {(r.describe(), r.count) for r in rules}
    assert ("blond_hair → blonde_hair", 1) in described
    assert ("blond hair → blonde hair", 1) in described  # spelled like the dataset
    assert ("tiara → (removed) where circlet", 2) in described  # circlet more frequent (3 vs 2)
    op = apply_rules(rules)
    assert op(data[0]) == ["blonde_hair", "circlet"]
    assert op(data[2]) == ["tiara", "smile"]  # alone: not the same thing, left alone


def test_pick_one_prefer_and_editable_table():
    data = lists("tiara, circlet", "circlet")
    table = synonym_table()
    table.prefer[0] = "tiara"
    rules = synonym_rules(data, table)
    assert [r.describe() for r in rules] == ["circlet → (removed) where tiara"]
    custom = SynonymTable(aliases={"thighhighs": ["thigh_highs"]}, pick_one=[])
    assert [r.describe() for r in synonym_rules(lists("thigh_highs, tiara, circlet"), custom)] == [
        "thigh_highs → thighhighs"
    ]
    assert synonym_table().prefer == {}  # editing a table never changes the defaults


def test_spell_like():
    assert spell_like("blonde_hair", "blond hair") == "blonde hair"
    assert spell_like("name (series)", "x_\\(y\\)") == "name_\\(series\\)"
