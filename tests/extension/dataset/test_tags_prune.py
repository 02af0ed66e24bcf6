"""Pruning into triggers, useless tags, outfit suggestions and trigger names."""

from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset
from lora_bakery.extension.dataset.tags.defaults import (
    default_trait_patterns,
    outfit_defaults,
    protected_traits,
    trait_categories,
    useless_patterns,
)
from lora_bakery.extension.dataset.tags.prune import (
    is_clothing,
    outfit_rules,
    outfit_trigger_name,
    prune_into_trigger,
    suggest_outfit_pieces,
    trait_rules,
    useless_rules,
)

CAPTIONS = {
    "10_chara/1.png": "1girl, solo, blue_eyes, long_hair, black_hair, large_breasts, smile, lipstick, red_dress, high_heels",
    "10_chara/2.png": "1girl, blue eyes, long hair, breasts, red_dress, choker, high_heels, meme",
    "10_chara/3.png": "CharaA, ||| 1girl, dark_skin, sailor_moon_redraw_challenge_(meme), shiny_skin, uncensored, red_dress",
}


def test_default_lists_load_and_are_fresh():
    cats = trait_categories()
    assert {"hair_color", "hair_style", "eye_color", "makeup", "skin"} <= {
        n for n, c in cats.items() if c.default
    }
    assert not cats["features"].default
    assert "large_breasts" in protected_traits()
    assert not set(protected_traits()) & set(default_trait_patterns())
    assert {"meme", "parody", "*_redraw_challenge_(meme)", "shiny_skin", "uncensored"} <= set(
        useless_patterns()
    )
    assert "*_shoes" in outfit_defaults().protected
    cats["hair_color"].tags.clear()
    assert trait_categories()["hair_color"].tags


def test_trait_rules_never_prune_breast_size():
    data = list(parse_dataset(CAPTIONS).values())
    rules = trait_rules(data, trigger="CharaA")
    removed = {r.remove[0]: r.count for r in rules}
    assert removed == {
        "blue_eyes": 1, "blue eyes": 1, "long_hair": 1, "long hair": 1, "black_hair": 1, "lipstick": 1, "dark_skin": 1,
    }  # fmt: skip
    assert all("CharaA" in r.reason for r in rules)
    assert "large_breasts" not in removed and "breasts" not in removed
    # With breast size allowed explicitly:
    unprotected = trait_rules(data, categories={"body": ["*breasts"]}, protect=[])
    assert {r.remove[0] for r in unprotected} == {"large_breasts", "breasts"}


def test_prune_into_trigger_end_to_end():
    data = list(parse_dataset(CAPTIONS).values())
    op = prune_into_trigger(trait_rules(data) + useless_rules(data), "CharaA")
    changed = apply_to_dataset(CAPTIONS, op)
    assert (
        changed["10_chara/1.png"][1] == "CharaA, ||| 1girl, solo, large_breasts, smile, red_dress, high_heels"
    )
    assert changed["10_chara/2.png"][1] == "CharaA, ||| 1girl, breasts, red_dress, choker, high_heels"
    assert changed["10_chara/3.png"][1] == "CharaA, ||| 1girl, red_dress"
    again = {k: v[1] for k, v in changed.items()}
    assert apply_to_dataset(again, op) == {}  # idempotent


def test_useless_rules_custom_list():
    data = list(parse_dataset(CAPTIONS).values())
    rules = useless_rules(data)
    assert {r.remove[0] for r in rules} == {
        "meme",
        "sailor_moon_redraw_challenge_(meme)",
        "shiny_skin",
        "uncensored",
    }
    assert "matches *_redraw_challenge_(meme)" in next(r.reason for r in rules if "sailor" in r.remove[0])
    assert [r.remove[0] for r in useless_rules(data, ["smile"])] == ["smile"]


def test_outfit_suggestions_skip_shoes():
    data = list(parse_dataset(CAPTIONS).values())
    pieces = suggest_outfit_pieces(data)
    assert [p for p, _ in pieces] == ["red_dress"]  # high_heels are protected, choker below 50 %
    assert [p for p, _ in suggest_outfit_pieces(data, min_share=0.3)] == ["red_dress", "choker"]
    assert suggest_outfit_pieces([]) == []
    rules = outfit_rules(data, ["red_dress", "choker", "high_heels"], trigger="OutfitB")
    assert {r.remove[0] for r in rules} == {"red_dress", "choker"}
    assert is_clothing("hair_ribbon", outfit_defaults().heads) and not is_clothing(
        "smile", outfit_defaults().heads
    )


def test_outfit_trigger_name():
    assert (
        outfit_trigger_name(["yellow_kimono", "short_kimono", "obi", "sleeveless"])
        == "Yellow_short_Kimono_Obi_Sleeveless"
    )
    assert outfit_trigger_name(["detached_sleeves", "red dress"]) == "Red_Dress_Detached_sleeves"
    assert outfit_trigger_name([]) == ""
