"""Planning on real folders: names, sizes (kohya buckets), repeats, seeds, Dreambooth, bad input."""

from __future__ import annotations

import pytest

from lora_bakery.extension.reg import RegSettings, RegSettingsError, default_output_dir, plan_reg
from lora_bakery.trainer.data.buckets import BucketManager, BucketSettings

from .helpers import make_training, tiny_settings


def test_captions_mode_plan(tmp_path):
    root = make_training(tmp_path / "train")
    plan = plan_reg(root, None, tiny_settings())
    assert plan.output == (tmp_path / "reg").resolve()
    assert [i.out_rel for i in plan.items] == ["10_chara/a.png", "10_chara/b.png", "3_outfit/e.png"]
    a, b, e = plan.items
    assert (a.caption, a.prompt, a.negative_prompt) == ("1girl, smile", "1girl, smile", "lowres")
    assert b.caption == "1girl, red_hair, smile" and b.original.startswith("chara, |||")
    manager = BucketManager(BucketSettings((64, 64), 32, 128, 32))
    assert (b.width, b.height) == manager.choose(64, 128).bucket == (32, 96)
    assert (e.width, e.height) == manager.choose(128, 64).bucket and e.caption == "shirt, skirt"
    assert [i.seed for i in plan.items] == [100, 101, 102]
    reasons = dict(plan.skipped)
    assert "no caption file (c.txt)" in reasons["10_chara/c.png"]
    assert "empty prompt after removing" in reasons["10_chara/d.png"] and "chara" in reasons["10_chara/d.png"]
    assert plan.folders == [("10_chara", "10_chara", 2), ("3_outfit", "3_outfit", 1)]
    assert any("'notes'" in w for w in plan.warnings)
    assert plan.sizes() == {(64, 64): 2, (32, 96): 1}


def test_fixed_size_repeats_override_and_several_per_caption(tmp_path):
    root = make_training(tmp_path / "train")
    plan = plan_reg(root / "10_chara", tmp_path / "out", tiny_settings(size_mode="fixed", width=48, height=40,
                                                                       images_per_caption=2, reg_repeats=1))
    assert [i.out_rel for i in plan.items] == ["1_chara/a.png", "1_chara/a_reg1.png", "1_chara/b.png",
                                               "1_chara/b_reg1.png"]
    assert {(i.width, i.height) for i in plan.items} == {(48, 40)}
    assert plan.source == root.resolve()
    random_seeds = plan_reg(root, tmp_path / "out", tiny_settings(seed=-1, images_per_caption=2)).items
    assert random_seeds[1].seed == random_seeds[0].seed + 1 and all(i.seed >= 0 for i in random_seeds)


def test_dreambooth_mode(tmp_path):
    root = tmp_path / "db"
    make_training(root)
    (root / "10_chara").rename(root / "10_sks_1girl")
    plan = plan_reg(root, tmp_path / "reg", tiny_settings(mode="dreambooth", prefix="photo"))
    by_folder = {}
    for item in plan.items:
        by_folder.setdefault(item.out_rel.split("/")[0], []).append(item)
    assert len(by_folder["10_sks_1girl"]) == 4  # every training image, captioned or not
    assert {(i.caption, i.prompt) for i in by_folder["10_sks_1girl"]} == {("1girl", "photo, 1girl")}
    assert "3_outfit" not in by_folder  # '3_outfit' names no class: skipped, with the reason
    assert "give a class prompt" in dict(plan.skipped)["3_outfit/e.jpg"]
    forced = plan_reg(root, tmp_path / "reg", tiny_settings(mode="dreambooth", class_prompt="woman"))
    assert {i.caption for i in forced.items} == {"woman"} and len(forced.items) == 5


def test_dreambooth_without_class_is_skipped_with_a_reason(tmp_path):
    root = tmp_path / "t"
    (root / "5_x").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (64, 64)).save(root / "5_x" / "i.png")
    plan = plan_reg(root, tmp_path / "reg", tiny_settings(mode="dreambooth"))
    assert not plan.items and "give a class prompt" in plan.skipped[0][1]


def test_bad_input(tmp_path):
    root = make_training(tmp_path / "train")
    (root / "10_chara" / "broken.png").write_bytes(b"not an image")
    (root / "10_chara" / "broken.txt").write_text("1girl", encoding="utf-8")
    (root / "10_chara" / "latin.png").write_bytes((root / "10_chara" / "a.png").read_bytes())
    (root / "10_chara" / "latin.txt").write_bytes("caf\xe9, 1girl".encode("cp1252"))
    plan = plan_reg(root, None, tiny_settings())
    assert "unreadable image" in dict(plan.skipped)["10_chara/broken.png"]
    assert "not UTF-8" in dict(plan.skipped)["10_chara/latin.png"]
    with pytest.raises(ValueError, match="inside the training folder"):
        plan_reg(root, root / "reg", tiny_settings())
    with pytest.raises(ValueError, match="does not exist"):
        plan_reg(tmp_path / "nowhere", None, tiny_settings())
    (tmp_path / "flat").mkdir()
    with pytest.raises(ValueError, match="N_name"):
        plan_reg(tmp_path / "flat", None, tiny_settings())
    with pytest.raises(ValueError, match="bucket settings"):
        plan_reg(root, None, tiny_settings(min_bucket=128))
    with pytest.raises(RegSettingsError, match="^width"):
        RegSettings(width=500)
    with pytest.raises(RegSettingsError, match="unknown reg setting"):
        RegSettings.from_dict({"stepz": 3})
    assert RegSettings.from_dict({"steps": "3", "seed": 5.0, "reg_repeats": "", "sampler": ""}).steps == 3
    assert default_output_dir(tmp_path / "mychar").name == "mychar_reg"
