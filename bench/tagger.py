"""Benchmark: the batched, threaded tagger vs. a one-image-at-a-time loop on the same model.

The baseline is how most tagger extensions work (picobyte tags one image at a time): open an
image, preprocess it the reference way (``preprocess.reference_preprocess``), run the session on a
batch of one, threshold, next image. LoRA Bakery decodes in threads while the model runs, skips the
alpha composite for opaque images (same values), and batches when the model's batch dimension is
dynamic. Both paths must produce identical tags; the script checks that before printing.

The model is the tiny tagger with its convolution branch (``tiny.py``, ``conv=True``), so
inference costs something, on generated photos of realistic size (JPEG and PNG, 768-1216 px).

    .venvs/standalone/bin/python bench/tagger.py              # 48 images
    .venvs/standalone/bin/python bench/tagger.py --images 96 --batch 16

Prints one table: wall and CPU seconds, images/s per way and the ratio to the baseline (best of
``--repeat`` interleaved rounds: the 2-core dev box is shared, so single runs are noisy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lora_bakery.extension.tagger.engine import tag_images  # noqa: E402
from lora_bakery.extension.tagger.postprocess import FormatOptions, format_tags, select  # noqa: E402
from lora_bakery.extension.tagger.preprocess import reference_preprocess  # noqa: E402
from lora_bakery.extension.tagger.session import TaggerModel, load_tagger  # noqa: E402
from lora_bakery.extension.tagger.tiny import write_tiny_tagger  # noqa: E402


def make_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Smooth random "photos" (gradients + blobs + light noise), alternating JPEG and PNG."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        w, h = (int(v) for v in rng.choice([768, 832, 896, 1024, 1216], 2))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([(xx / w) * rng.uniform(80, 255), (yy / h) * rng.uniform(80, 255),
                         np.full((h, w), rng.uniform(0, 255))], -1)
        base += rng.normal(0, 6, base.shape)
        image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        path = folder / (f"{i:04d}.jpg" if i % 2 else f"{i:04d}.png")
        image.save(path, quality=92) if path.suffix == ".jpg" else image.save(path, compress_level=1)
        paths.append(path)
    return paths


def one_at_a_time(paths: list[Path], tagger: TaggerModel, options: FormatOptions) -> list[list[str]]:
    """The baseline loop: decode, reference preprocessing, batch-1 inference, in sequence."""
    out = []
    for path in paths:
        with Image.open(path) as image:
            x = reference_preprocess(image, tagger.size)
        probs = tagger.session.run([tagger.output_name], {tagger.input_name: x})[0][0]
        out.append(format_tags(select(probs, tagger.labels, tagger.thresholds), options))
    return out


def timed(fn) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds of all threads, result)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def measure(count: int = 48, batch: int = 8, workers: int | None = None, size: int = 448, repeat: int = 3) -> dict:
    """Run every way on the same images, ``repeat`` interleaved rounds, best wall time kept.

    Interleaving rounds keeps a busy neighbour on a shared machine from penalising one way only.
    Raises SystemExit if any way's tags differ from the baseline's.

    Returns:
        `dict`: ``images``, ``providers``, ``make_seconds`` and ``rows`` = [(label, wall s, cpu s)],
        the baseline first (``bench/dataset.py`` can reuse this).
    """
    with tempfile.TemporaryDirectory(prefix="bakery-bench-tagger-") as tmp:
        tmp_path = Path(tmp)
        folder = write_tiny_tagger(tmp_path / "model", "v3", conv=True, size=size)
        (tmp_path / "images").mkdir()
        t_make, _, paths = timed(lambda: make_images(tmp_path / "images", count))
        tagger = load_tagger(folder)
        options = FormatOptions()
        base_tags = one_at_a_time(paths[:2], tagger, options)  # warm-up (session arenas)
        ways = [
            ("one at a time (reference preprocessing, batch 1)", None),
            ("bakery: no threads, batch 1", dict(batch_size=1, workers=0)),
            ("bakery: threads, batch 1", dict(batch_size=1, workers=workers)),
            (f"bakery: threads, batch {batch}", dict(batch_size=batch, workers=workers)),
        ]
        best: dict[str, tuple[float, float]] = {}
        for _ in range(max(1, repeat)):
            for label, kwargs in ways:
                if kwargs is None:
                    wall, cpu, base_tags = timed(lambda: one_at_a_time(paths, tagger, options))
                else:
                    wall, cpu, run = timed(lambda kw=kwargs: tag_images(paths, [tagger], options=options, **kw))
                    if [r.tags for r in run.results] != base_tags:
                        raise SystemExit(f"{label}: tags differ from the baseline")
                if label not in best or wall < best[label][0]:
                    best[label] = (wall, cpu)
    rows = [(label, *best[label]) for label, _ in ways]
    return {"images": len(paths), "providers": tagger.providers, "make_seconds": t_make, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--workers", type=int, default=None, help="decoding threads (default min(4, cores))")
    parser.add_argument("--size", type=int, default=448, help="model input size")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the best wall time counts")
    args = parser.parse_args()
    result = measure(args.images, args.batch, args.workers, args.size, args.repeat)
    n, rows = result["images"], result["rows"]
    t_base = rows[0][1]
    print(f"tiny conv tagger, input {args.size}, {n} images 768-1216 px (JPEG/PNG, made in "
          f"{result['make_seconds']:.1f} s); providers {result['providers']}; {os.cpu_count()} CPU cores; "
          f"best of {args.repeat}")
    print(f"{'way':<52} {'wall s':>7} {'cpu s':>6} {'images/s':>9} {'vs loop':>8}")
    for label, wall, cpu in rows:
        print(f"{label:<52} {wall:7.2f} {cpu:6.2f} {n / wall:9.1f} {t_base / wall:7.2f}x")
    print("tags identical in every way: yes")


if __name__ == "__main__":
    main()
