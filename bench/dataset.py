"""Benchmark: the Dataset tab's bulk operations.

    .venvs/standalone/bin/python bench/dataset.py                 # 10,000 images
    .venvs/standalone/bin/python bench/dataset.py --images 2000

Part 1 — scan + bucket assignment (goal ≥ 5,000 images/s, header reads only): 10,000 small PNG and
JPEG files (varied sizes and aspect ratios, with captions) in concept folders under a temp dir;
cold (no cache: every header read) and warm (``.bakery/scan-cache.json`` valid: one stat per file).
Each section is one function returning table rows.

Part 2 — caption batch operations on 100,000 generated captions (``bench/dataset_captions.py``'s
captions), timed the way the Dataset tab previews a batch edit (``apply_to_dataset`` over the parsed set).

Part 3 — the tagger, batched and threaded vs. a one-image-at-a-time loop on the same tiny conv model
(``bench/tagger.py``'s ``measure``; goal ≥ 2×).

Part 4 — the caption editor on 2,000 photo-sized JPEGs: load, page turns with and without cached
thumbnails, filters, timed through the functions the Captions sub-tab calls.

    .venvs/standalone/bin/python bench/dataset.py --only captions tagger
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
    """Rows (name, images/s, note) for scan + bucket assignment: cold (first read of freshly written
    files, then again), warm cache, and the cold scan with Pillow reading every header (the fast
    PNG/JPEG parsers of ``headers.py`` switched off) side by side."""
    from lora_bakery.extension.dataset import scan as scan_mod
    from lora_bakery.extension.dataset.bucketing import bucket_dataset
    from lora_bakery.extension.dataset.scan import cache_path, scan
    from lora_bakery.trainer.data.buckets import BucketSettings

    settings = BucketSettings()
    rows = []
    fast_exts = scan_mod._FAST_EXTENSIONS
    runs = [("cold, first read of the files", True, True), ("cold, again", True, True),
            ("cold, Pillow-only headers", True, False), ("warm (cache)", False, True),
            ("warm (cache, again)", False, True)]
    for label, cold, fast in runs:
        if cold:
            cache_path(root).unlink(missing_ok=True)
        scan_mod._FAST_EXTENSIONS = fast_exts if fast else frozenset()
        try:
            t0 = time.perf_counter()
            res = scan(root)
            t1 = time.perf_counter()
            b = bucket_dataset(res, settings)
            t2 = time.perf_counter()
        finally:
            scan_mod._FAST_EXTENSIONS = fast_exts
        assert res.image_count == n and len(b.rows) == n, (res.image_count, len(b.rows))
        rate = n / (t2 - t0)
        note = (f"scan {t1 - t0:.2f}s + buckets {t2 - t1:.3f}s; hits {res.cache_hits}, misses {res.cache_misses}; "
                f"{len(b.histogram)} buckets; goal {'met' if rate >= GOAL_IMAGES_PER_S else 'MISSED'}")
        rows.append((f"scan + bucket, {label}", rate, note))
    pillow = next(r for r in rows if "Pillow-only" in r[0])[1]
    again = next(r for r in rows if r[0].endswith("cold, again"))[1]
    rows.append(("cold scan: fast headers vs Pillow-only", again, f"{again / pillow:.2f}x the Pillow-only rate "
                                                                   "(same files, same run)"))
    return rows


def bench_captions(count: int) -> list[tuple[str, float, str]]:
    """Rows (name, captions/s, note) for caption batch operations on ``count`` generated captions."""
    import dataset_captions as dc

    from lora_bakery.extension.dataset.tags import consolidate, edit, prune, rules, stats
    from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset

    captions = dc.make_captions(count)
    t_parse, parsed = dc.timed(lambda: parse_dataset(captions))
    lists = list(parsed.values())
    freq = stats.tag_frequency(lists, loose=True)
    rows = [(f"parse {count:,} captions", count / t_parse, f"{t_parse:.2f}s")]
    t_freq, table = dc.timed(lambda: stats.frequency_table(parsed))
    rows.append(("frequency table (total + per folder)", count / t_freq, f"{t_freq:.2f}s, {len(table):,} tags"))
    ops = [
        ("add trigger + |||", lambda: edit.add_triggers("CharaA")),
        ("remove tags (exact + glob)", lambda: edit.remove_tags(["meme", "*_(meme)", "parody"])),
        ("consolidate (propose + apply)", lambda: rules.apply_rules(consolidate.redundancy_rules(lists))),
        ("prune traits into trigger (propose + apply)",
         lambda: prune.prune_into_trigger(prune.trait_rules(lists), "CharaA")),
        ("sort by frequency", lambda: edit.sort_by_frequency(freq, triggers=["CharaA"])),
    ]
    for name, make in ops:
        secs, changed = dc.timed(lambda make=make: apply_to_dataset(captions, make(), parsed=parsed))
        rows.append((name, count / secs, f"{secs:.2f}s, {len(changed):,} changed"))
    return rows


def bench_tagger(images: int, batch: int = 8) -> list[tuple[str, float, str]]:
    """Rows (way, images/s, note) for the tagger vs. the one-at-a-time loop (``bench/tagger.py``)."""
    import tagger

    result = tagger.measure(images, batch)
    n, rows = result["images"], result["rows"]
    base = rows[0][1]
    goal = 2.0
    out = []
    for label, wall, _cpu in rows:
        note = f"{wall:.2f}s, {base / wall:.2f}x the loop"
        if label.endswith(f"batch {batch}"):
            note += f"; goal >= {goal:g}x {'met' if base / wall >= goal else 'MISSED'}"
        out.append((f"tagger: {label}", n / wall, note))
    return out


def make_photo_dataset(root: Path, n: int, folders: int = 4) -> None:
    """``n`` photo-sized JPEGs (768x1024 and 1024x768, distinct noise) with ~30-tag captions: the gallery's case."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    tags = [f"tag_{i}" for i in range(300)]
    base = [Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)) for w, h in ((768, 1024), (1024, 768))]
    blobs = []
    for i, img in enumerate(base * 4):
        buf = io.BytesIO()
        img.rotate(i * 7).save(buf, format="JPEG", quality=80)
        blobs.append(buf.getvalue())
    for f in range(folders):
        (root / f"{f + 1}_concept{f}").mkdir(parents=True)
    for i in range(n):
        folder = root / f"{i % folders + 1}_concept{i % folders}"
        (folder / f"photo{i:05d}.jpg").write_bytes(blobs[i % len(blobs)] + i.to_bytes(4, "big"))  # distinct files
        picked = rng.choice(len(tags), 30, replace=False)
        (folder / f"photo{i:05d}.txt").write_text(", ".join(tags[j] for j in picked), encoding="utf-8")


def bench_gallery(root: Path, n: int) -> list[tuple[str, float, str]]:
    """Rows (action, seconds, note): the caption editor's load, page turns and filter on ``n`` images,
    timed through the same functions the Captions sub-tab calls."""
    from lora_bakery.extension.ui.dataset import editor, thumbs

    rows = []

    def timed(label: str, fn, note: str = "") -> None:
        thumbs.wait_prefetched()  # a person looks at a page for a while; the next one is made meanwhile
        t0 = time.perf_counter()
        fn()
        rows.append((label, time.perf_counter() - t0, note))

    timed("load: frequency table (first scan)", lambda: editor.frequency(str(root), "count", "", "", ""),
          f"{n:,} captions, header scan included")
    timed("page 1, thumbnails made", lambda: editor.page(str(root), "", "", "", 1), f"{editor.PAGE_SIZE} thumbnails decoded")
    timed("page 1 again (thumbnails cached)", lambda: editor.page(str(root), "", "", "", 1))
    timed("page 2 (made in the background while page 1 was shown)", lambda: editor.page(str(root), "", "", "", 2))
    timed("page 10, jumped to (thumbnails made)", lambda: editor.page(str(root), "", "", "", 10))
    last = -(-n // editor.PAGE_SIZE)
    editor.page(str(root), "", "", "", last)
    timed(f"page {last} again (thumbnails cached)", lambda: editor.page(str(root), "", "", "", last))
    timed("filter ALL of tag_1 + frequency table", lambda: editor.frequency(str(root), "count", "tag_1", "", ""))
    timed("filter ANY of tag_1, tag_2: page 1", lambda: editor.page(str(root), "", "tag_1, tag_2", "", 1),
          "other images: thumbnails made")
    return rows


def print_table(rows: list[tuple[str, float, str]], unit: str = "images/s") -> None:
    w = max(len(r[0]) for r in rows)
    print(f"{'operation':<{w}}  {unit:>12}  notes")
    for name, rate, note in rows:
        print(f"{name:<{w}}  {rate:>12,.0f}  {note}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=10_000, help="part 1: images to scan")
    ap.add_argument("--captions", type=int, default=100_000, help="part 2: captions")
    ap.add_argument("--tagger-images", type=int, default=48, help="part 3: images to tag")
    ap.add_argument("--gallery-images", type=int, default=2000, help="part 4: images in the caption gallery")
    ap.add_argument("--only", nargs="*", choices=["scan", "captions", "tagger", "gallery"], help="run only these parts")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmarks
    parts = set(args.only or ["scan", "captions", "tagger", "gallery"])
    if "scan" in parts:
        with tempfile.TemporaryDirectory(prefix="bakery-bench-") as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            make_dataset(root, args.images)
            print(f"generated {args.images:,} images + captions in {time.perf_counter() - t0:.1f}s under {root}")
            rows = bench_scan_buckets(root, args.images)
        print("\n## 1. scan + bucket assignment (goal >= 5,000 images/s)")
        print_table(rows)
    if "captions" in parts:
        print(f"\n## 2. caption batch operations on {args.captions:,} captions (rate = captions/s)")
        print_table(bench_captions(args.captions), unit="captions/s")
    if "tagger" in parts:
        print(f"\n## 3. tagger on {args.tagger_images} images, batched vs one at a time (goal >= 2x)")
        print_table(bench_tagger(args.tagger_images))
    if "gallery" in parts:
        with tempfile.TemporaryDirectory(prefix="bakery-bench-") as tmp:
            root = Path(tmp)
            make_photo_dataset(root, args.gallery_images)
            print(f"\n## 4. caption editor on {args.gallery_images:,} photo-sized JPEGs (goal: every action < 1 s "
                  "once thumbnails exist)")
            rows = bench_gallery(root, args.gallery_images)
        w = max(len(r[0]) for r in rows)
        print(f"{'action':<{w}}  {'seconds':>8}  notes")
        for name, secs, note in rows:
            print(f"{name:<{w}}  {secs:>8.3f}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
