"""random_crop and color_aug: kohya's draws, the pixels they give, masks cropped alike, latents encoded live."""

from __future__ import annotations

import colorsys
import random

import numpy as np
import pytest
import torch
from PIL import Image

from lora_bakery.trainer.data import augment
from lora_bakery.trainer.data.augment import SampleAug
from lora_bakery.trainer.data.dataset import build_plan
from lora_bakery.trainer.data.images import load_mask, load_pixels
from lora_bakery.trainer.data.latents import LiveLatents

from .test_latents import small_config, vae  # noqa: F401 - the VAE fixture


def test_random_crop_box_covers_every_offset_and_keeps_the_bucket_size():
    rng = random.Random(0)
    boxes = [augment.random_crop_box((100, 64), (64, 64), rng) for _ in range(4000)]
    lefts = {b[0] for b in boxes}
    assert lefts == set(range(0, 37))  # randint(0, excess): both ends included
    assert all(b[1] == 0 and b[2] - b[0] == 64 and b[3] == 64 for b in boxes)
    assert augment.random_crop_box((64, 64), (64, 64), rng) == (0, 0, 64, 64)
    tall = augment.random_crop_box((64, 90), (64, 64), random.Random(1))
    assert tall[0] == 0 and 0 <= tall[1] <= 26 and tall[3] - tall[1] == 64


def test_color_aug_odds_and_ranges_are_kohyas():
    rng = random.Random(5)
    draws = [augment.draw(False, True, (64, 64), (64, 64), rng) for _ in range(20000)]
    hue = [d.hue_shift for d in draws if d.hue_shift is not None]
    gamma = [d.gamma for d in draws if d.gamma is not None]
    assert abs(len(hue) + len(gamma) - 0.33 * 20000) < 300  # p = 0.33
    assert abs(len(hue) - len(gamma)) < 250  # then 50/50
    assert min(hue) >= -8 and max(hue) <= 8 and min(hue) < -7.9 and max(hue) > 7.9
    assert min(gamma) >= 0.95 and max(gamma) <= 1.05
    assert all(d.crop is None for d in draws)
    plain = augment.draw(False, False, (64, 64), (64, 64), rng)
    assert plain == augment.NONE and not plain.changes_colour


def test_gamma_is_kohyas_formula_on_0_255_values():
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
    out = augment.apply_colour(arr, SampleAug(gamma=0.95))
    assert np.array_equal(out, np.clip(arr.astype(np.float64) ** 0.95, 0, 255).astype(np.uint8))
    assert out[-1, -1, 0] == 193  # 255 ** 0.95: kohya's gamma darkens strongly
    assert augment.apply_colour(arr, SampleAug(gamma=1.05))[-1, -1, 0] == 255


def test_hue_shift_matches_colorsys_and_keeps_greys():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    arr[0, :] = 128  # greys: no hue to shift
    out = augment.shift_hue(arr, 6.0)  # 6 OpenCV units = 12 degrees
    assert np.array_equal(out[0], arr[0])
    for y, x in [(3, 4), (10, 10), (19, 0)]:
        h, s, v = colorsys.rgb_to_hsv(*(arr[y, x] / 255.0))
        want = np.array(colorsys.hsv_to_rgb((h + 12 / 360) % 1.0, s, v)) * 255
        assert np.abs(out[y, x].astype(float) - want).max() <= 1.0
    back = augment.shift_hue(augment.shift_hue(arr, 5.0), -5.0)
    assert np.abs(back.astype(int) - arr.astype(int)).max() <= 2


def test_pixels_and_mask_share_the_random_crop(tmp_path):
    """An image whose alpha equals its red channel: after a random crop both still agree."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    x = np.tile(np.arange(96, dtype=np.uint8)[None, :] * 2, (64, 1))  # a horizontal ramp
    rgba = np.stack([x, np.zeros_like(x), np.zeros_like(x), x], -1)
    Image.fromarray(rgba, "RGBA").save(folder / "ramp.png")
    (folder / "ramp.txt").write_text("sks", encoding="utf-8")
    plan = build_plan(small_config(folder, alpha_mask=True, random_crop=True))
    item = plan.items[0]
    assert item.random_crop and item.choice.resized[0] > item.choice.bucket[0]
    seen = set()
    for seed in range(12):
        aug = augment.draw(True, False, item.choice.resized, item.choice.bucket, random.Random(seed))
        seen.add(aug.crop)
        for flip in (False, True):
            red = (load_pixels(item, flip, aug)[0] + 1) * 127.5
            mask = load_mask(item, flip, aug) * 255
            assert torch.allclose(red, mask, atol=1.0)
    assert len(seen) > 3  # the crop really moves
    centre = load_pixels(item)
    assert torch.equal(load_pixels(item, False, SampleAug(crop=item.choice.crop)), centre)


def test_live_latents_follow_the_augmentation(tmp_path, vae):  # noqa: F811 - the fixture
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8)).save(folder / "a.png")
    (folder / "a.txt").write_text("sks", encoding="utf-8")
    plan = build_plan(small_config(folder, random_crop=True, color_aug=True))
    live = LiveLatents(plan, vae)
    a = live.augment(0, random.Random(3))
    b = next(aug for aug in (live.augment(0, random.Random(s)) for s in range(4, 60)) if aug.crop != a.crop)
    first = live.encode([0], [False], [a], [7])
    assert torch.equal(first, live.encode([0], [False], [a], [7]))  # same draws, same latents
    assert not torch.equal(first, live.encode([0], [False], [b], [7]))
    assert first.shape == (1, 4, 8, 8) and torch.isfinite(first).all()


@pytest.mark.parametrize("cache_latents", [True, False])
def test_training_with_augmentations(tmp_path, tiny_sd15_path, cache_latents):
    from lora_bakery.trainer.config import TrainConfig
    from lora_bakery.trainer.loop.checkpoint import load_checkpoint
    from lora_bakery.trainer.loop.toy import make_toy_dataset
    from lora_bakery.trainer.train import TrainError, train

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=2)
    config = TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data),
                    "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128,
                                "random_crop": True, "color_aug": True, "flip_aug": True}},
        "network": {"dim": 4, "alpha": 4},
        "optimizer": {"lr": 3e-3, "scheduler": "constant"},
        "training": {"epochs": 1, "mixed_precision": "no", "seed": 3, "cache_latents": cache_latents},
        "saving": {"output_dir": str(tmp_path / "out"), "output_name": "aug", "save_precision": "float"},
    })
    parts = load_checkpoint(tiny_sd15_path)
    if cache_latents:
        with pytest.raises(TrainError, match="cache_latents .*false"):
            train(config, parts)
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(config, parts)
        config.saving.output_dir = str(tmp_path / "again")
        again = train(config, parts)
    finally:
        torch.set_num_threads(before)
    assert result.status == "finished" and result.final.is_file()
    assert all(np.isfinite(result.losses)) and len(result.losses) == result.total_steps
    assert again.losses == result.losses  # the augmentations come from the seeded per-sample draws
    assert any("encoded every step" in m for m in result.messages)
