"""Benchmark: the Dataset tab's bulk operations.

    .venvs/standalone/bin/python bench/dataset.py                 # 10,000 images
    .venvs/standalone/bin/python bench/dataset.py --images 2000

Part 1 — scan + bucket assignment (goal ≥ 5,000 images/s, header reads only): 10,000 small PNG and
JPEG files (varied sizes and aspect ratios, with captions) in concept folders under a temp dir;
cold (no cache: every header read) and warm (``.bakery/scan-cache.json`` valid: one stat per file).
Each section is one function returning table rows, so later parts (caption batch ops, tagger) plug in.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL_IMAGES_PER_S = 5000


def make_dataset(root: Path, n: int, folders: int = 10) -> None:
    """``n`` small images (PNG and JPEG, 40 distinct sizes) with captions in ``folders`` concept folders."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    blobs = []
    for i in range(40):
        w, h = int(rng.integers(48, 400)), int(rng.integers(48, 400))
        img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        buf = io.BytesIO()
        fmt = "PNG" if i % 2 else "JPEG"
        img.save(buf, format=fmt, **({"quality": 70} if fmt == "JPEG" else {"compress_level": 1}))
        blobs.append((".png" if fmt == "PNG" else ".jpg", buf.getvalue()))
    for f in range(folders):
        (root / f"{f + 1}_concept{f}").mkdir(parents=True)
    for i in range(n):
        ext, data = blobs[i % len(blobs)]
        folder = root / f"{i % folders + 1}_concept{i % folders}"
        (folder / f"img{i:06d}{ext}").write_bytes(data)
        (folder / f"img{i:06d}.txt").write_text("1girl, solo, long_hair, smile", encoding="utf-8")


def bench_scan_buckets(root: Path, n: int) -> list[tuple[str, float, str]]:
    """Rows (name, images/s, note) for scan + bucket assignment, cold and warm cache."""
    from lora_bakery.extension.dataset.bucketing import bucket_dataset
    from lora_bakery.extension.dataset.scan import cache_path, scan
    from lora_bakery.trainer.data.buckets import BucketSettings

    settings = BucketSettings()
    rows = []
    cache_path(root).unlink(missing_ok=True)
    for label in ("cold (header reads)", "warm (cache)", "warm (cache, again)"):
        t0 = time.perf_counter()
        res = scan(root)
        t1 = time.perf_counter()
        b = bucket_dataset(res, settings)
        t2 = time.perf_counter()
        assert res.image_count == n and len(b.rows) == n, (res.image_count, len(b.rows))
        rate = n / (t2 - t0)
        note = (f"scan {t1 - t0:.2f}s + buckets {t2 - t1:.3f}s; hits {res.cache_hits}, misses {res.cache_misses}; "
                f"{len(b.histogram)} buckets; goal {'met' if rate >= GOAL_IMAGES_PER_S else 'MISSED'}")
        rows.append((f"scan + bucket, {label}", rate, note))
    return rows


def print_table(rows: list[tuple[str, float, str]]) -> None:
    w = max(len(r[0]) for r in rows)
    print(f"{'operation':<{w}}  {'images/s':>10}  notes")
    for name, rate, note in rows:
        print(f"{name:<{w}}  {rate:>10,.0f}  {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bakery-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        make_dataset(root, args.images)
        print(f"generated {args.images:,} images + captions in {time.perf_counter() - t0:.1f}s under {root}")
        rows = bench_scan_buckets(root, args.images)
    print_table(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
