"""Benchmark: reg images through LoRA Bakery vs. calling the host's generate directly.

Both sides make the same images (same prompts, negative prompt, sizes, seeds, steps, CFG) with the
same ``DiffusersHost`` (model loaded and warmed up first). "direct" is one ``host.generate`` call
with every request, nothing saved. "ours" is what the Reg images tab does: ``plan_reg`` (captions
read, triggers stripped, buckets) + ``generate_reg`` (same-size batches, PNG + caption written
atomically, manifest after every batch) into a fresh folder. Rounds alternate between the two, so
load from other processes hits both alike; the median round is reported.

    .venvs/standalone/bin/python bench/reg.py                       # tiny SD1.5, 12 images, 4 steps
    .venvs/standalone/bin/python bench/reg.py --ckpt model.safetensors --resolution 512 --steps 20

Prints per-image seconds of both, the ratio of medians and of best rounds (goal <= 1.05x), and the
share of our time spent outside ``host.generate`` (planning and writing; immune to machine load).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = [(96, 96), (64, 128), (128, 64)]  # three buckets at 64² with a 32 px step


def make_dataset(root: Path, count: int) -> Path:
    """``count`` captioned images in ``root/10_chara`` (three aspect ratios)."""
    from PIL import Image

    folder = root / "10_chara"
    folder.mkdir(parents=True, exist_ok=True)
    tags = ["smile", "red_hair", "blue_eyes", "standing", "sitting", "outdoors", "indoors", "hat"]
    for i in range(count):
        Image.new("RGB", SIZES[i % len(SIZES)], (40 * i % 255, 90, 160)).save(folder / f"{i:03d}.png")
        caption = ", ".join(["chara", "|||", "1girl", tags[i % len(tags)], tags[(i + 3) % len(tags)]])
        (folder / f"{i:03d}.txt").write_text(caption, encoding="utf-8")
    return root


def main(argv: list[str] | None = None) -> int:
    from lora_bakery.extension.host.diffusers_host import DiffusersHost
    from lora_bakery.extension.reg import RegSettings, generate_reg, plan_reg
    from lora_bakery.extension.reg.generate import request_for
    from lora_bakery.trainer.tiny import tiny_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="single-file checkpoint (default: the tiny SD1.5)")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bakery-bench-reg-"))
    try:
        source = make_dataset(work / "train", args.images)
        host = DiffusersHost(args.ckpt or tiny_checkpoint("sd15"))
        settings = RegSettings(remove=["chara"], resolution=args.resolution, bucket_step=32, steps=args.steps,
                               cfg_scale=5.0, seed=1000, negative_prompt="lowres", batch_size=4)
        plan = plan_reg(source, work / "reg", settings)
        requests = [request_for(item, plan) for item in plan.items]
        warm = {(r.width, r.height): r for r in requests}
        host.generate(list(warm.values()))  # load + warm up every size
        direct, ours, overhead = [], [], []
        for r in range(args.rounds):
            t0 = time.perf_counter()
            images = host.generate(requests)
            direct.append((time.perf_counter() - t0) / len(images))
            out = work / f"reg{r}"
            t0 = time.perf_counter()
            run = generate_reg(host, plan_reg(source, out, settings), existing="error")
            total = time.perf_counter() - t0
            ours.append(total / len(run.generated))
            overhead.append((total - run.host_seconds) / total)  # planning, writing, manifest: our own share
            assert len(run.generated) == len(images) == len(plan.items)
        d, o = statistics.median(direct), statistics.median(ours)
        best = min(ours) / min(direct)
        result = {"images": len(plan.items), "sizes": {f"{w}x{h}": n for (w, h), n in plan.sizes().items()},
                  "steps": args.steps, "rounds": args.rounds, "direct_s_per_image": round(d, 4),
                  "ours_s_per_image": round(o, 4), "ratio": round(o / d, 3), "ratio_best": round(best, 3),
                  "our_share": round(statistics.median(overhead), 4), "goal": 1.05,
                  "direct_rounds": [round(x, 4) for x in direct], "ours_rounds": [round(x, 4) for x in ours]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{result['images']} images {result['sizes']}, {args.steps} steps, median of {args.rounds} rounds")
        print(f"  host.generate directly : {d:.4f} s/image  {result['direct_rounds']}")
        print(f"  reg images (plan+write): {o:.4f} s/image  {result['ours_rounds']}")
        print(f"  ratio (medians)        : {o / d:.3f}x (goal <= 1.05x); best rounds: {best:.3f}x")
        print(f"  time outside host.generate (plan, PNG/caption/manifest writes): "
              f"{100 * result['our_share']:.2f}% of ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
