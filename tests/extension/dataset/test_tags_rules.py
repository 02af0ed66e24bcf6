"""Rules: conditions, placement, fixed part, counts."""

from lora_bakery.extension.dataset.tags.parse import join_tags, split_tags
from lora_bakery.extension.dataset.tags.rules import Rule, apply_rules, count_rules, rules_fired, vocabulary


def run(op, caption):
    return join_tags(op(split_tags(caption)))


def test_conditions():
    drop_shirt = Rule(("shirt",), requires=("white_shirt",))
    assert run(apply_rules([drop_shirt]), "shirt, smile, white_shirt") == "smile, white_shirt"
    assert run(apply_rules([drop_shirt]), "shirt, smile") == "shirt, smile"
    special = Rule(("shirt",), add="white_shirt", unless=("white_shirt", "blue_shirt"))
    assert run(apply_rules([special]), "smile, shirt, hat") == "smile, white_shirt, hat"
    assert run(apply_rules([special]), "shirt, blue_shirt") == "shirt, blue_shirt"


def test_merge_goes_where_the_earliest_removed_tag_was():
    merge = Rule(("white_dress", "turtleneck_dress"), add="white_turtleneck_dress")
    assert (
        run(apply_rules([merge]), "smile, turtleneck_dress, hat, white_dress")
        == "smile, white_turtleneck_dress, hat"
    )
    assert run(apply_rules([merge]), "white_dress, smile") == "white_dress, smile"


def test_added_tag_is_not_duplicated_and_other_repeats_stay():
    alias = Rule(("blond_hair",), add="blonde_hair")
    assert run(apply_rules([alias]), "blonde_hair, x, blond_hair, x") == "blonde_hair, x, x"
    assert run(apply_rules([alias]), "blond_hair, x, blonde_hair") == "blonde_hair, x"


def test_order_of_rules_does_not_matter():
    rules = [Rule(("shirt",), requires=("white_shirt",)), Rule(("white_shirt",), add="shirt")]
    a = run(apply_rules(rules), "shirt, white_shirt")
    b = run(apply_rules(rules[::-1]), "shirt, white_shirt")
    assert a == b == "shirt"


def test_fixed_part_and_protect():
    rule = Rule(("T",))
    assert run(apply_rules([rule]), "T, ||| a, T") == "T, ||| a"
    assert run(apply_rules([rule], skip_fixed=False), "T, ||| a, T") == "||| a"
    assert run(apply_rules([rule], protect=["t"]), "a, T") == "a, T"
    # Conditions only see the flexible part.
    cond = Rule(("shirt",), requires=("white_shirt",))
    assert run(apply_rules([cond]), "white_shirt, ||| shirt") == "white_shirt, ||| shirt"


def test_counts_vocabulary_and_fired():
    lists = [split_tags(c) for c in ["shirt, white_shirt", "shirt", "T, ||| shirt, white_shirt, shirt", ""]]
    rules = [Rule(("shirt",), requires=("white_shirt",)), Rule(("hat",)), Rule(("shirt",))]
    counted = count_rules(rules, lists)
    assert [(r.describe(), r.count) for r in counted] == [
        ("shirt → (removed)", 3),
        ("shirt → (removed) where white_shirt", 2),
    ]
    assert vocabulary(lists) == {"shirt": 3, "white_shirt": 2}
    assert vocabulary(lists, skip_fixed=False)["T"] == 1
    assert rules_fired(rules, lists[0]) == [rules[0], rules[2]]
