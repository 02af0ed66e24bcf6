"""Training items from a config: folders, captions, reg balancing, buckets, bad input; and batching."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lora_bakery.trainer.config import ConfigError, TrainConfig
from lora_bakery.trainer.data.batching import BucketBatcher, dataset_ss_metadata
from lora_bakery.trainer.data.dataset import DataError, build_plan

from .helpers import make_folder, make_image


def folder_config(train, reg=None, **general):
    data = {
        "dataset": {"train_data_dir": str(train), "general": general},
        "training": {"prior_loss_weight": 0.5},
    }
    if reg is not None:
        data["dataset"]["reg_data_dir"] = str(reg)
    return TrainConfig.from_dict(data)


def test_folder_mode_repeats_captions_and_reg_balancing(tmp_path):
    make_folder(tmp_path / "train", "10_sks", [(512, 512), (768, 512), (512, 768)])
    make_folder(tmp_path / "train", "sks", [(512, 512)])  # no repeat count: skipped, with a warning
    make_folder(tmp_path / "reg", "1_person", [(512, 512), (512, 512)], captions=False)
    plan = build_plan(folder_config(tmp_path / "train", tmp_path / "reg"))
    train = [i for i in plan.items if not i.is_reg]
    reg = [i for i in plan.items if i.is_reg]
    assert [i.image.name for i in train] == ["img0.png", "img1.png", "img2.png"]
    assert plan.num_train_images == 30
    # kohya: reg repeats grow round-robin until reg images x repeats >= 30
    assert [i.num_repeats for i in reg] == [15, 15] and plan.num_reg_images == 30
    assert (
        train[0].caption == "sks, tag0, common" and reg[0].caption == "person"
    )  # class tokens from the folder
    assert {i.loss_weight for i in reg} == {0.5} and {i.loss_weight for i in train} == {1.0}
    assert [(p.name, "'sks'" in why) for p, why in plan.excluded] == [("sks", True)]
    # buckets (hand computation for 768x512 at 512²: closest aspect is 640x384, scaled to 640x427)
    assert train[0].bucket == (512, 512)
    assert train[1].bucket == (640, 384) and train[1].choice.resized == (640, 427)
    assert train[2].bucket == (384, 640)


def test_reg_images_beyond_the_target_are_left_out(tmp_path):
    make_folder(tmp_path / "train", "1_sks", [(512, 512)] * 2)
    make_folder(tmp_path / "reg", "1_person", [(512, 512)] * 5, captions=False)
    plan = build_plan(folder_config(tmp_path / "train", tmp_path / "reg"))
    assert [i.num_repeats for i in plan.items if i.is_reg] == [1, 1]


def test_missing_caption_policies(tmp_path):
    make_folder(tmp_path / "train", "2_sks", [(512, 512)] * 2, captions=False)
    cfg = folder_config(tmp_path / "train")
    assert [i.caption for i in build_plan(cfg).items] == ["sks", "sks"]
    with pytest.raises(DataError, match="img0.png"):
        build_plan(cfg, missing_captions="error")
    (tmp_path / "train" / "2_sks" / "img0.txt").write_text("a, b", encoding="utf-8")
    plan = build_plan(cfg, missing_captions="skip")
    assert [i.image.name for i in plan.items] == ["img0.png"]
    assert plan.skipped[0][0].name == "img1.png" and "caption" in plan.skipped[0][1]


def test_broken_image_and_bad_caption(tmp_path):
    folder = make_folder(tmp_path / "train", "1_sks", [(512, 512)] * 2)
    (folder / "broken.png").write_bytes(b"not a png at all")
    cfg = folder_config(tmp_path / "train")
    with pytest.raises(DataError, match="broken.png"):
        build_plan(cfg)
    plan = build_plan(cfg, bad_images="skip")
    assert len(plan.items) == 2 and plan.skipped[0][0].name == "broken.png"
    (folder / "img0.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DataError, match="img0.txt.*UTF-8"):
        build_plan(cfg)


def test_no_images_says_how_to_name_folders(tmp_path):
    make_folder(tmp_path / "train", "sks", [(512, 512)])
    with pytest.raises(DataError, match="N_name"):
        build_plan(folder_config(tmp_path / "train"))
    with pytest.raises(ConfigError, match="^dataset.train_data_dir"):
        build_plan(folder_config(tmp_path / "missing"))


def test_config_mode_masks_flip_and_bucket_steps(tmp_path):
    imgs = make_folder(tmp_path, "imgs", [(512, 512), (512, 512)])
    masks = tmp_path / "masks"
    make_image(masks / "img0.png", (512, 512), color=(255, 255, 255))
    cfg = TrainConfig.from_dict(
        {
            "dataset": {
                "datasets": [
                    {
                        "flip_aug": True,
                        "subsets": [
                            {"image_dir": str(imgs), "conditioning_data_dir": str(masks), "num_repeats": 3}
                        ],
                    }
                ]
            },
            "training": {"masked_loss": True},
        }
    )
    plan = build_plan(cfg)
    assert [i.image.name for i in plan.items] == ["img0.png"] and plan.items[0].mask == masks / "img0.png"
    assert plan.items[0].flip_aug and "mask" in plan.skipped[0][1]
    bad = TrainConfig.from_dict(
        {"dataset": {"datasets": [{"bucket_reso_steps": 48, "subsets": [{"image_dir": str(imgs)}]}]}}
    )
    with pytest.raises(ConfigError, match="^dataset.bucket_reso_steps"):
        build_plan(bad, "sdxl")


def _two_bucket_plan(tmp_path, batch_size=2):
    make_folder(tmp_path / "train", "3_a", [(512, 512)] * 3, prefix="sq")
    make_folder(tmp_path / "train", "2_b", [(768, 512)] * 2, prefix="wide")
    cfg = folder_config(tmp_path / "train")
    cfg.training.batch_size = batch_size
    return build_plan(cfg)


def test_batches_come_from_one_bucket_and_cover_every_repeat(tmp_path):
    plan = _two_bucket_plan(tmp_path)
    batcher = BucketBatcher(plan, seed=7)
    # buckets: 512x512 holds 3 images x 3 repeats = 9 -> 5 batches; 640x384 holds 2 x 2 = 4 -> 2 batches
    assert batcher.batches_per_epoch() == 7
    for epoch in (1, 2):
        batches = batcher.epoch(epoch)
        assert len(batches) == 7
        seen = Counter()
        for b in batches:
            assert {plan.items[i].bucket for i in b.items} == {b.bucket}
            assert 1 <= len(b.items) <= 2
            seen.update(b.items)
        assert seen == Counter({i: it.num_repeats for i, it in enumerate(plan.items)})
    assert batcher.epoch(2) == BucketBatcher(plan, seed=7).epoch(
        2
    )  # replayable: resume sees the same batches
    assert batcher.epoch(1) != batcher.epoch(2)
    assert batcher.epoch(1) != BucketBatcher(plan, seed=8).epoch(1)
    with pytest.raises(ValueError):
        batcher.epoch(0)


def test_batches_never_mix_datasets(tmp_path):
    a = make_folder(tmp_path, "a", [(512, 512)] * 3)
    b = make_folder(tmp_path, "b", [(512, 512)] * 3)
    cfg = TrainConfig.from_dict(
        {
            "dataset": {
                "datasets": [
                    {"batch_size": 2, "subsets": [{"image_dir": str(a)}]},
                    {
                        "batch_size": 3,
                        "resolution": 256,
                        "min_bucket_reso": 128,
                        "subsets": [{"image_dir": str(b)}],
                    },
                ]
            }
        }
    )
    plan = build_plan(cfg)
    batches = BucketBatcher(plan, seed=0).epoch(1)
    assert sorted(len(b.items) for b in batches) == [1, 2, 3]
    for b in batches:
        assert {plan.items[i].dataset for i in b.items} == {b.dataset}
    meta = dataset_ss_metadata(plan, BucketBatcher(plan, seed=0), folder_mode=False)
    datasets = json.loads(meta["ss_datasets"])
    assert [d["batch_size_per_device"] for d in datasets] == [2, 3] and datasets[1]["resolution"] == [
        256,
        256,
    ]
    # kohya's per-dataset tag frequency and per-subset caption keys (train_network.py, ss_datasets)
    assert [sorted(d["tag_frequency"]) for d in datasets] == [["a"], ["b"]]
    subset = datasets[0]["subsets"][0]
    assert subset["keep_tokens_separator"] == "|||" and subset["enable_wildcard"] is False
    assert subset["caption_prefix"] is None and "secondary_separator" in subset


def test_dataset_metadata_in_folder_mode(tmp_path):
    plan = _two_bucket_plan(tmp_path)
    meta = dataset_ss_metadata(plan, BucketBatcher(plan, seed=0), folder_mode=True)
    assert all(isinstance(v, str) for v in meta.values())
    assert json.loads(meta["ss_dataset_dirs"]) == {
        "2_b": {"n_repeats": 2, "img_count": 2},
        "3_a": {"n_repeats": 3, "img_count": 3},
    }
    freq = json.loads(meta["ss_tag_frequency"])
    assert freq["3_a"]["common"] == 3 and freq["3_a"]["sks"] == 3 and freq["2_b"]["tag1"] == 1
    info = json.loads(meta["ss_bucket_info"])
    assert {tuple(b["resolution"]): b["count"] for b in info["buckets"].values()} == {
        (512, 512): 9,
        (640, 384): 4,
    }
    assert meta["ss_num_train_images"] == "13" and meta["ss_num_batches_per_epoch"] == "7"
    assert meta["ss_resolution"] == "(512, 512)" and meta["ss_reg_dataset_dirs"] == "{}"
