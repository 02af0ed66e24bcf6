"""Latent caching with the tiny model's VAE: kohya file names and keys, reuse and invalidation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.data.dataset import DataError, build_plan
from lora_bakery.trainer.data.images import load_mask, load_pixels
from lora_bakery.trainer.data.latents import LatentCache

from .helpers import make_folder, make_image


@pytest.fixture(scope="module")
def vae(tiny_sd15_path):
    from safetensors.torch import load_file

    from lora_bakery.trainer.models import build_views

    return build_views(load_file(str(tiny_sd15_path))).vae


def small_config(folder, **subset):
    return TrainConfig.from_dict(
        {
            "dataset": {
                "datasets": [
                    {
                        "resolution": 64,
                        "min_bucket_reso": 64,
                        "max_bucket_reso": 128,
                        "subsets": [{"image_dir": str(folder), **subset}],
                    }
                ]
            }
        }
    )


def test_disk_cache_names_keys_and_reuse(tmp_path, vae):
    folder = make_folder(tmp_path, "imgs", [(64, 64), (96, 64)])
    plan = build_plan(small_config(folder, flip_aug=True))
    cache = LatentCache(plan, vae, to_disk=True, seed=3)
    report = cache.prepare()
    assert (report.encoded, report.reused) == (2, 0)
    cached = folder / ".bakery" / "latents"
    assert sorted(p.name for p in cached.iterdir()) == ["img0_0064x0064_sd.npz", "img1_0096x0064_sd.npz"]
    with np.load(cached / "img1_0096x0064_sd.npz") as npz:
        assert {"latents", "latents_flipped", "original_size", "crop_ltrb"} <= set(npz.files)
        assert npz["latents"].dtype == np.float32 and npz["latents"].shape == (
            4,
            8,
            8,
        )  # bucket 64x64, stride 8
        assert tuple(npz["original_size"]) == (96, 64)
    lat = cache.get(0)
    assert lat.shape == (4, 8, 8) and not torch.equal(lat, cache.get(0, flip=True))
    assert not list(folder.glob("*.npz"))  # nothing beside the user's images

    again = LatentCache(plan, vae, to_disk=True, seed=3)
    report = again.prepare()
    assert (report.encoded, report.reused, report.rejected) == (0, 2, [])
    assert torch.equal(again.get(0), lat)

    # deterministic with the seed: a fresh RAM-only cache gives the same latents
    ram = LatentCache(plan, vae, seed=3)
    ram.prepare()
    assert torch.equal(ram.get(1), again.get(1))


def test_invalid_cache_files_are_redone(tmp_path, vae):
    folder = make_folder(tmp_path, "imgs", [(64, 64), (64, 64)])
    LatentCache(build_plan(small_config(folder)), vae, to_disk=True).prepare()
    cached = folder / ".bakery" / "latents"
    # flip now needed: the files lack latents_flipped
    report = LatentCache(build_plan(small_config(folder, flip_aug=True)), vae, to_disk=True).prepare()
    assert report.encoded == 2 and all("flipped" in r for _, r in report.rejected)
    # a truncated file and a file from another VAE
    (cached / "img0_0064x0064_sd.npz").write_bytes(b"garbage")
    with np.load(cached / "img1_0064x0064_sd.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["bakery_vae"] = np.array("someothervae")
    np.savez(cached / "img1_0064x0064_sd.npz", **arrays)
    report = LatentCache(build_plan(small_config(folder, flip_aug=True)), vae, to_disk=True).prepare()
    reasons = sorted(r for _, r in report.rejected)
    assert (
        report.encoded == 2 and reasons[0] == "made with another VAE" and reasons[1].startswith("unreadable")
    )


def test_kohya_file_without_our_keys_is_reused_when_shapes_match(tmp_path, vae):
    folder = make_folder(tmp_path, "imgs", [(64, 64)])
    plan = build_plan(small_config(folder))
    path = LatentCache(plan, vae).path(0)
    path.parent.mkdir(parents=True)
    np.savez(
        path,
        latents=np.ones((4, 8, 8), np.float32),
        original_size=np.array([64, 64]),
        crop_ltrb=np.array([0, 0, 64, 64]),
    )
    cache = LatentCache(plan, vae, to_disk=True)
    assert cache.prepare().reused == 1 and float(cache.get(0).mean()) == 1.0
    np.savez(path, latents=np.ones((4, 4, 4), np.float32))
    assert LatentCache(plan, vae, to_disk=True).prepare().rejected[0][1].startswith("latent size")


def test_alpha_mask_is_cached_and_pixels_are_in_range(tmp_path, vae):
    folder = tmp_path / "imgs"
    make_image(folder / "a.png", (64, 64), mode="RGBA")
    (folder / "a.txt").write_text("sks", encoding="utf-8")
    plan = build_plan(small_config(folder, alpha_mask=True))
    item = plan.items[0]
    pixels = load_pixels(item)
    assert pixels.shape == (3, 64, 64) and pixels.min() >= -1 and pixels.max() <= 1
    mask = load_mask(item)
    assert mask.shape == (64, 64) and float(mask[:, :32].max()) == 0.0 and float(mask[:, 32:].min()) == 1.0
    cache = LatentCache(plan, vae, to_disk=True)
    cache.prepare()
    with np.load(cache.path(0)) as npz:
        assert npz["alpha_mask"].shape == (64, 64)
    assert torch.equal(cache.mask(0, flip=True), mask.flip(-1))


def test_caching_refuses_random_crop(tmp_path, vae):
    folder = make_folder(tmp_path, "imgs", [(64, 64)])
    with pytest.raises(DataError, match="random_crop"):
        LatentCache(build_plan(small_config(folder, random_crop=True)), vae)
