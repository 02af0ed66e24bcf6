"""``bakery blocks``: per-block analysis and block-weight baking of LoRA files.

- ``bakery blocks norms RUN`` — per-block ‖ΔW‖ of every epoch as a heatmap + lines PNG (no generation).
- ``bakery blocks effect LORA --prompt P`` — image-space analyzer: each block lowered in turn.
- ``bakery blocks bake LORA --preset MIDD`` — a new file with the block weights baked in (exact, linear).
- ``bakery blocks presets`` — list the block presets (defaults + ``--presets`` file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lora_bakery.cli.common import add_model_options, make_host


def add_parser(sub: Any) -> None:
    p = sub.add_parser("blocks", help="block analysis (norms, image analyzer) and block-weight baking",
                       description=__doc__.splitlines()[0])
    p.add_argument("--presets", type=Path, help="user block presets file (lbw format NAME:v1,v2,...)")
    p.add_argument("--json", action="store_true", help="print results as JSON")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    norms = actions.add_parser("norms", help="per-block ||dW|| per epoch (heatmap + lines)")
    norms.add_argument("run", type=Path, nargs="+", help="training output folder or LoRA files")
    norms.add_argument("--out", type=Path, default=Path("outputs/compare/block-norms.png"))
    effect = actions.add_parser("effect", help="image-space analyzer (generates one image per block)")
    effect.add_argument("lora", type=Path)
    effect.add_argument("--prompt", default="a photo")
    effect.add_argument("--negative", default="")
    effect.add_argument("--seed", type=int, default=1234)
    effect.add_argument("--steps", type=int, default=20)
    effect.add_argument("--width", type=int, default=512)
    effect.add_argument("--height", type=int, default=512)
    effect.add_argument("--blocks", help="block ids, comma-separated (default: every U-Net block)")
    effect.add_argument("--low", type=float, default=0.0)
    effect.add_argument("--high", type=float, default=1.0)
    effect.add_argument("--threshold", type=int, default=20)
    effect.add_argument("--out", type=Path, default=Path("outputs/compare/effect"))
    add_model_options(effect)
    bake = actions.add_parser("bake", help="bake block weights into a new LoRA file")
    bake.add_argument("lora", type=Path)
    group = bake.add_mutually_exclusive_group(required=True)
    group.add_argument("--preset", help="preset name")
    group.add_argument("--weights", help="12/17/20/26 values, comma-separated")
    bake.add_argument("--rebase", help="FROM:TO - the new file at weight FROM behaves like the old at TO")
    bake.add_argument("--drop-zero", action="store_true", help="leave out layers of zeroed blocks")
    bake.add_argument("--out", type=Path, help="new file (default <stem>_<preset>.safetensors beside it)")
    actions.add_parser("presets", help="list block presets")


def _files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    from lora_bakery.extension.compare import list_epochs

    if len(paths) == 1 and paths[0].is_dir():
        epochs = list_epochs(paths[0])
        return [e.path for e in epochs], [e.label for e in epochs]
    return paths, [p.stem for p in paths]


def run(args: argparse.Namespace) -> int:
    from lora_bakery.extension import compare

    presets = compare.load_presets(args.presets)
    try:
        if args.action == "presets":
            out: Any = presets
            text = compare.presets.format_presets(presets).rstrip()
        elif args.action == "norms":
            files, labels = _files(args.run)
            norms = compare.block_norms(files, labels)
            png = compare.plot_block_norms(norms, args.out)
            out = {**norms.as_dict(), "png": str(png)}
            text = f"block norms: {png} ({len(norms.blocks)} blocks x {len(files)} files)"
        elif args.action == "bake":
            weights = compare.resolve_blocks(args.preset or args.weights, presets)
            rebase = [float(v) for v in args.rebase.split(":")] if args.rebase else [None, None]
            result = compare.bake_block_weights(args.lora, weights, args.out, label=args.preset or "custom",
                                                rebase_from=rebase[0], rebase_to=rebase[1],
                                                drop_zero_blocks=args.drop_zero)
            out = {"path": str(result.path), "rebase": result.rebase, "dropped_layers": result.dropped_layers,
                   "layers": result.layers}
            text = f"baked: {result.path} ({result.layers} layers, {result.dropped_layers} dropped)"
        else:
            from lora_bakery.extension.host.base import GenerationRequest
            from lora_bakery.extension.jobs import TqdmSink

            req = GenerationRequest(prompt=args.prompt, negative_prompt=args.negative, seed=args.seed,
                                    steps=args.steps, width=args.width, height=args.height)
            blocks = [b.strip() for b in args.blocks.split(",")] if args.blocks else None
            effect = compare.block_effects(make_host(args), str(args.lora), req, args.out, blocks, args.low,
                                           args.high, args.threshold, TqdmSink(desc="blocks"))
            out = {"blocks": effect.blocks, "percents": effect.percents, "chart": str(effect.chart),
                   "sheet": str(effect.sheet)}
            text = "\n".join(f"{b}: {p:.1f}%" for b, p in zip(effect.blocks, effect.percents)) + f"\nchart: {effect.chart}"
    except (ValueError, FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(out, indent=1) if args.json else text)
    return 0
