"""Repeats balancer: the guide's worked examples, multipliers, warnings, and undoable folder renames."""

from __future__ import annotations

import pytest

from lora_bakery.extension.dataset import safety
from lora_bakery.extension.dataset.repeats import FolderCount, Recipe, balance, folder_counts, plan_renames
from lora_bakery.extension.dataset.scan import scan

from .makers import pattern, save, tree_digest


def _reps(b):
    return [r.new_name for r in b.rows]


def test_guide_example_three_outfits_300_each():
    b = balance([FolderCount("outfit1", 100), FolderCount("outfit2", 50), FolderCount("outfit3", 10)])
    assert _reps(b) == ["3_outfit1", "6_outfit2", "30_outfit3"]
    assert [r.steps_per_epoch for r in b.rows] == [300, 300, 300]
    assert b.main_per_epoch == 900 and b.main_total == 7200
    assert any("burn" in n for n in b.notes)  # 7200 > 3000 with Prodigy


def test_guide_example_20_10_5_at_200():
    b = balance([FolderCount("A", 20), FolderCount("B", 10), FolderCount("C", 5)], Recipe(concept_steps=200))
    assert _reps(b) == ["10_A", "20_B", "40_C"]


@pytest.mark.parametrize(("recipe", "target"), [
    (Recipe(), 300),
    (Recipe(optimizer="adamw"), 600),
    (Recipe(ip_noise_min_snr=True), 180),          # 300 × 3/5
    (Recipe(family="sdxl"), 150),
    (Recipe(old_anime=True), 100),
    (Recipe(optimizer="adamw", family="sdxl", ip_noise_min_snr=True), 180),
    (Recipe(ip_noise_min_snr=True, family="sdxl", old_anime=True), 30),
])
def test_multipliers(recipe, target):
    assert recipe.target("concept") == target


def test_round_down_and_subconcepts():
    b = balance([FolderCount("3_chara", 7), FolderCount("outfit", 12, "subconcept")])
    assert b.rows[0].repeats == 42 and b.rows[0].current_repeats == 3   # floor(300 / 7)
    assert b.rows[1].repeats == 8                                        # floor(100 / 12)
    assert b.rows[0].new_name == "42_chara"


def test_too_many_images_and_prodigy_limit():
    b = balance([FolderCount("big", 700)])
    assert b.rows[0].repeats == 1 and any("exceed" in n for n in b.rows[0].notes)
    assert any("over 500" in n for n in b.rows[0].notes)


def test_bad_recipe_values_name_the_field():
    with pytest.raises(ValueError, match="optimizer"):
        Recipe(optimizer="sgd")
    with pytest.raises(ValueError, match="epochs"):
        Recipe(epochs=0)


def test_apply_renames_and_undo(tmp_path):
    for folder, n in (("1_outfit1", 10), ("2_outfit2", 5), ("misc", 3)):
        for i in range(n):
            save(pattern(8, 8, i), tmp_path / folder / f"{i}.png")
    before = tree_digest(tmp_path)
    b = balance(folder_counts(scan(tmp_path, use_cache=False)), Recipe(concept_steps=60))
    assert _reps(b) == ["6_outfit1", "12_outfit2", "20_misc"]
    rec = safety.apply(plan_renames(b), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["12_outfit2", "20_misc", "6_outfit1"]
    safety.undo(rec)
    assert tree_digest(tmp_path) == before


def test_swap_names_goes_through_a_temporary_name(tmp_path):
    save(pattern(8, 8), tmp_path / "3_a" / "x.png")
    for i in range(2):
        save(pattern(8, 8, i), tmp_path / "1_a" / f"{i}.png")
    # 3_a (1 image) → 300_a? use a target that maps 1_a → 3_a and 3_a → 6_a
    b = balance([FolderCount("1_a", 2), FolderCount("3_a", 1)], Recipe(concept_steps=6))
    assert _reps(b) == ["3_a", "6_a"]
    plan = plan_renames(b)
    assert plan.changes[0].new_path.startswith(".bakery-tmp-")
    rec = safety.apply(plan, tmp_path)
    assert (tmp_path / "3_a" / "0.png").exists() and (tmp_path / "6_a" / "x.png").exists()
    safety.undo(rec)
    assert (tmp_path / "1_a" / "0.png").exists() and (tmp_path / "3_a" / "x.png").exists()
