"""``bakery compare RUN``: epoch × weight × block-weight grids of a training output folder.

``RUN`` is a training output folder (every epoch file is used) or one LoRA file. Axes are
``--x/--y/--z KIND[=v1,v2,...]`` with KIND one of epoch, weight, te_weight, unet_weight, blocks,
prompt_sr, seed, cfg (epoch values: numbers, labels such as ``s600`` or ``final``; blocks: preset
names, vectors with ``;``).
Default: epochs across, weights 0.6/0.8/1.0 down (one file: its epoch axis is dropped, the other
axes move up). ``--list`` only prints the epoch table (one row for one file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lora_bakery.cli.common import add_model_options, make_host


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="epoch x weight x block-weight grids of a training run",
                       description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="training output folder or one .safetensors LoRA")
    p.add_argument("--list", action="store_true", help="only list the epoch files with their metadata")
    p.add_argument("--prompt", default="a photo", help="prompt (default %(default)r)")
    p.add_argument("--negative", default="", help="negative prompt")
    p.add_argument("--x", default="epoch", help="X axis KIND[=values] (default epoch)")
    p.add_argument("--y", default="weight=0.6,0.8,1.0", help="Y axis (default %(default)s)")
    p.add_argument("--z", default=None, help="Z axis")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cfg", type=float, default=7.0)
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=512)
    p.add_argument("--sampler", default=None)
    p.add_argument("--weight", type=float, default=1.0, help="LoRA weight when no weight axis")
    p.add_argument("--blocks", default=None, help="block preset or vector when no blocks axis")
    p.add_argument("--presets", type=Path, help="user block presets file (lbw format NAME:v1,v2,...)")
    p.add_argument("--out", type=Path, default=Path("outputs/compare"), help="output folder (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_options(p)


def _values(kind: str, text: str, epochs: list[Any]) -> tuple[list[Any], list[str] | None]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if kind == "epoch":
        chosen = epochs
        if items:
            wanted = {t.lower() for t in items}
            chosen = [e for e in epochs if (e.final and "final" in wanted) or e.label.lower() in wanted
                      or (str(e.epoch) in wanted and not e.final and not e.step_save)]
            if not chosen:
                raise ValueError(f"no epoch file matches {text!r}")
        return [str(e.path) for e in chosen], [e.label for e in chosen]
    if kind == "blocks":
        return [t.replace(";", ",") for t in items], None
    if kind == "seed":
        return [int(t) for t in items], None
    if kind == "prompt_sr":
        return items, None
    return [float(t) for t in items], None


def parse_axis(text: str | None, epochs: list[Any]) -> Any:
    """``KIND[=v1,v2]`` -> ``Axis`` (epoch without values: every epoch file)."""
    from lora_bakery.extension.compare import Axis

    if not text:
        return None
    kind, _, values = text.partition("=")
    kind = kind.strip()
    if kind != "epoch" and not values:
        raise ValueError(f"axis {kind!r} needs values: {kind}=v1,v2,...")
    parsed, labels = _values(kind, values, epochs)
    return Axis(kind, parsed, labels)


def _run_files(run_path: Path) -> list[Any]:
    """The epoch files ``RUN`` stands for: a folder's networks, or the one file given.

    Raises:
        ValueError: the path does not exist, is not a ``.safetensors`` file, or the folder has none.
    """
    from lora_bakery.extension.compare import epoch_file, list_epochs

    if run_path.is_dir():
        epochs = list_epochs(run_path)
        if not epochs:
            raise ValueError(f"no .safetensors files in {run_path}")
        return epochs
    if not run_path.exists():
        raise ValueError(f"no such file or folder: {run_path}")
    if run_path.suffix.lower() != ".safetensors":
        raise ValueError(f"not a .safetensors LoRA file or a training output folder: {run_path}")
    return [epoch_file(run_path)]


def run(args: argparse.Namespace) -> int:
    from lora_bakery.extension.compare import GridSpec, load_presets, run_grid
    from lora_bakery.extension.jobs import TqdmSink

    run_path = Path(args.run)
    try:
        epochs = _run_files(run_path)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.list:
        rows = [e.summary() for e in epochs]
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            for row in rows:
                print("  ".join(f"{k}={v}" for k, v in row.items() if v))
        return 0
    single = run_path.is_file()
    try:
        # One file has no epochs to vary: its epoch axis is dropped before it is parsed, and the
        # other axes move up (the default "epochs across, weights down" becomes weights across).
        texts = [a for a in (args.x, args.y, args.z) if not (single and a and a.partition("=")[0].strip() == "epoch")]
        axes = [parse_axis(a, epochs) for a in texts] + [None] * (3 - len(texts))
        spec = GridSpec(
            prompt=args.prompt, negative_prompt=args.negative, lora=str(run_path) if single else None,
            weight=args.weight, blocks=args.blocks, seed=args.seed, width=args.width, height=args.height,
            steps=args.steps, cfg_scale=args.cfg, sampler=args.sampler, x=axes[0], y=axes[1], z=axes[2],
            presets=load_presets(args.presets),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = run_grid(make_host(args), spec, args.out, TqdmSink(desc="compare"))
    summary = {"grid": str(result.grid), "cells": len(result.cells), "x": result.x_labels, "y": result.y_labels,
               "z": result.z_labels, "interrupted": result.interrupted}
    print(json.dumps(summary, indent=1) if args.json else f"grid: {result.grid} ({len(result.cells)} cells)")
    return 130 if result.interrupted else 0
