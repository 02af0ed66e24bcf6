"""Bucket preview over a scanned dataset: rows, flags, histogram × repeats, sort-into-folders plan."""

from __future__ import annotations

import io

import pytest

from lora_bakery.extension.dataset import safety
from lora_bakery.extension.dataset.bucketing import bucket_dataset, plan_sort_into_buckets
from lora_bakery.extension.dataset.scan import scan
from lora_bakery.trainer.data.buckets import BucketSettings
from lora_bakery.trainer.data.folders import avif_readable

from . import makers as mk


def test_bucket_preview_and_sort_plan(tmp_path):
    mk.save(mk.pattern(1000, 1500), tmp_path / "3_a" / "tall.png")
    (tmp_path / "3_a" / "tall.txt").write_text("x")
    mk.save(mk.pattern(100, 100), tmp_path / "3_a" / "tiny.png")
    mk.save(mk.pattern(2000, 2000), tmp_path / "2_b" / "huge.jpg")
    (tmp_path / "2_b" / "bad.png").write_bytes(b"")
    res = scan(tmp_path, use_cache=False)
    b = bucket_dataset(res, BucketSettings())
    rows = {r.path: r for r in b.rows}
    assert set(rows) == {"3_a/tall.png", "3_a/tiny.png", "2_b/huge.jpg"}  # the broken file is not bucketed
    assert rows["3_a/tall.png"].choice.bucket == (384, 640)
    assert any("needs upscale" in f for f in rows["3_a/tiny.png"].flags)
    assert any("loses detail" in f for f in rows["2_b/huge.jpg"].flags)
    assert b.histogram == {(384, 640): 3, (512, 512): 5} and b.images_per_bucket == {(384, 640): 1, (512, 512): 2}
    before = mk.tree_digest(tmp_path)
    plan = plan_sort_into_buckets(res, b)
    assert {c.new_path for c in plan.changes} >= {"3_a/bucket_384x640/tall.png", "3_a/bucket_384x640/tall.txt"}
    rec = safety.apply(plan, tmp_path)
    assert (tmp_path / "2_b" / "bucket_512x512" / "huge.jpg").exists()
    safety.undo(rec)
    assert mk.tree_digest(tmp_path) == before


@pytest.mark.skipif(not avif_readable(), reason="Pillow cannot read AVIF here (no pillow_avif, Pillow < 11.3)")
def test_avif_is_scanned_where_readable(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    try:
        mk.pattern(64, 32).save(buf, format="AVIF")
    except (KeyError, OSError) as exc:
        pytest.skip(f"AVIF readable but not writable here: {exc}")
    (tmp_path / "1_a").mkdir()
    (tmp_path / "1_a" / "x.avif").write_bytes(buf.getvalue())
    ims = [im for _, im in scan(tmp_path, use_cache=False).images()]
    assert [(im.path, im.width, im.height, im.format) for im in ims] == [("1_a/x.avif", 64, 32, "AVIF")]
    assert Image.open(tmp_path / "1_a" / "x.avif").size == (64, 32)


def test_trainer_view_is_what_the_trainer_loads(tmp_path):
    """The Buckets preview shows the very pixels training reads: compare with the trainer's load_pixels."""
    import numpy as np
    import torch

    from lora_bakery.extension.dataset.bucketing import trainer_view, trainer_views
    from lora_bakery.trainer.config import TrainConfig
    from lora_bakery.trainer.data.dataset import build_plan
    from lora_bakery.trainer.data.images import load_pixels

    folder = tmp_path / "2_chara"
    mk.save(mk.pattern(300, 170, seed=1), folder / "wide.png")
    mk.save(mk.pattern(40, 90, seed=2), folder / "small.png")
    for name in ("wide", "small"):
        (folder / f"{name}.txt").write_text("sks", encoding="utf-8")
    settings = BucketSettings(resolution=(128, 128), min_reso=64, max_reso=256, step=64)
    buckets = bucket_dataset(scan(tmp_path, use_cache=False), settings)
    shown = list(trainer_views(tmp_path, buckets))
    rows = [row for row, _ in shown]
    assert rows[0].path == "2_chara/small.png" and rows[0].flags  # flagged (needs upscale) first
    plan = build_plan(TrainConfig.from_dict({"dataset": {"train_data_dir": str(tmp_path), "general": {
        "resolution": 128, "min_bucket_reso": 64, "max_bucket_reso": 256, "bucket_reso_steps": 64}}}))
    items = {item.image.name: item for item in plan.items}
    for row, view in shown:
        item = items[row.path.rsplit("/", 1)[1]]
        assert view.size == item.choice.bucket == row.choice.bucket
        trained = ((load_pixels(item) + 1) * 127.5).round().permute(1, 2, 0).to(torch.uint8).numpy()
        assert np.array_equal(np.asarray(view), trained)
    (folder / "wide.png").write_bytes(b"broken now")
    assert trainer_view(tmp_path, next(r for r in rows if r.path.endswith("wide.png"))) is None
