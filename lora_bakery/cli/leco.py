"""``bakery leco CONFIG.toml [--ckpt PATH]``: train a LECO concept slider from a config file.

The same ``train_leco()`` the LECO tab runs, over the standalone host (``DiffusersHost``), with a
tqdm bar (Ctrl-C saves ``NAME-interrupted.safetensors`` and a resumable state, then stops) and
preview grids at every save under ``OUTPUT/preview/``. ``bakery leco --example leco.toml`` writes
a starting config from a preset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import add_model_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser("leco", help="train a LECO concept slider from prompts (config .toml)")
    p.add_argument("config", type=Path, nargs="?", help="LECO config .toml (as the LECO tab saves it)")
    add_model_options(p)
    p.add_argument("--out", type=Path, help="output folder (overrides saving.output_dir)")
    p.add_argument("--resume", type=Path, help="state folder of an interrupted run (NAME-state)")
    p.add_argument("--steps", type=int, help="override training.steps")
    p.add_argument("--no-preview", action="store_true", help="skip the preview grids")
    p.add_argument("--example", type=Path, metavar="PATH", help="write an example config to PATH and exit")
    p.add_argument("--preset", default="skirt length (guide)", help="preset for --example (see the LECO tab)")


def host_previewer(host: Any) -> Any:
    """``train_leco()``'s previewer over ``Host.generate``.

    A host that generates from the training views themselves (``DiffusersHost``) renders with the
    slider in place at the requested weight (``uses_training_views``); any other host gets the
    saved file as a ``LoraSpec`` at that weight (negative weights included), so the grid comes from
    its own LoRA loader, as the user will see it later.
    """
    from lora_bakery.extension.host.base import GenerationRequest, LoraSpec, NullProgress

    live = getattr(host, "name", "") == "diffusers"

    def preview(request: Any, lora_file: Any) -> Any:
        generation = GenerationRequest(**request.generation_fields())
        if not live:
            generation.loras = [LoraSpec(str(lora_file), te=request.multiplier, unet=request.multiplier)]
        return host.generate([generation], NullProgress())[0].image

    preview.uses_training_views = live  # type: ignore[attr-defined]
    return preview


def _write_example(path: Path, preset_name: str) -> int:
    from lora_bakery.trainer.config import ConfigError
    from lora_bakery.trainer.leco import LecoConfig, preset

    try:
        data = preset(preset_name)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data.setdefault("saving", {})["output_dir"] = str(path.parent / "leco_out")
    try:
        LecoConfig.from_dict(data).save(path)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _load(args: argparse.Namespace) -> Any:
    from lora_bakery.trainer.leco import LecoConfig

    config = LecoConfig.load(args.config)
    data = config.to_dict()
    if args.out:
        data["saving"]["output_dir"] = str(args.out)
    if args.resume:
        data["saving"]["resume"] = str(args.resume)
    if args.steps:
        data["training"]["steps"] = args.steps
    if args.no_preview:
        data["preview"]["enabled"] = False
    return LecoConfig.from_dict(data)


def run(args: argparse.Namespace) -> int:
    from lora_bakery.extension.tqdm_sink import TqdmSink
    from lora_bakery.trainer.config import ConfigError
    from lora_bakery.trainer.leco import LecoError, train_leco

    from .common import config_file_problem, make_host

    if args.example:
        return _write_example(args.example, args.preset)
    if not args.config:
        print("error: give a LECO config .toml (or --example PATH to write one)", file=sys.stderr)
        return 2
    problem = config_file_problem(args.config, "LECO config .toml (the LECO tab's Save button, or --example PATH, writes one)")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        config = _load(args)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    host = make_host(args)
    sink = TqdmSink()
    previewer = host_previewer(host) if config.preview.enabled else None
    try:
        with host.exclusive():
            result = train_leco(config, host.model(), sink, previewer, views=host.views())
    except LecoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in [*result.files, *result.previews]:
        print(path)
    status = f"{result.status}: {result.steps}/{result.total_steps} steps, {result.seconds:.1f} s"
    if result.losses:
        status += f", last loss {result.losses[-1]:.4g}"
    if result.status == "interrupted":
        status += f"; resume with: bakery leco {args.config} --resume {result.state_dir}"
    print(status, file=sys.stderr)
    for step, change in result.changes:
        print(f"step {step}: extremes changed {change:.1%} since the previous save", file=sys.stderr)
    return 130 if result.status == "interrupted" else 0
