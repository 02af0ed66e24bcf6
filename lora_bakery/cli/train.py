"""``bakery train CONFIG.toml [--ckpt PATH]``: train a LoRA from a config file on a checkpoint.

The same ``train()`` the Bake tab runs, over the standalone host (``DiffusersHost``), with a tqdm
bar (Ctrl-C saves the current weights and a resumable state, then stops) and sample images
rendered by the host.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from .common import add_model_options


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a LoRA from a config .toml (Bake tab settings or a kohya dataset config)")
    p.add_argument("config", type=Path, help="config .toml; `bakery train` runs a file saved by the Bake tab unchanged")
    add_model_options(p)
    p.add_argument("--out", type=Path, help="output folder (overrides saving.output_dir)")
    p.add_argument("--resume", type=Path, help="state folder of an interrupted run (NAME-state)")
    p.add_argument("--no-samples", action="store_true", help="skip sample images")
    p.add_argument("--skip-bad-images", action="store_true",
                   help="leave out images that cannot be decoded, listed before the first step, instead of "
                        "stopping (sets training.skip_bad_images)")


def host_sampler(host: Any) -> Any:
    """``train()``'s sampler over ``Host.generate``.

    A host that generates from the training views themselves (``DiffusersHost``) renders with the
    adapters in place (``uses_training_views``); any other host gets the epoch's LoRA file as a
    ``LoraSpec``, so the samples come from its own LoRA loader, as the user will see them later.
    """
    from lora_bakery.extension.host.base import GenerationRequest, LoraSpec, NullProgress

    live = getattr(host, "name", "") == "diffusers"

    def sample(prompts: list[Any], lora_file: Any) -> list[Any]:
        requests = [GenerationRequest(**dataclasses.asdict(p)) for p in prompts]
        if not live:
            for request in requests:
                request.loras = [LoraSpec(str(lora_file))]
        return [g.image for g in host.generate(requests, NullProgress())]

    sample.uses_training_views = live  # type: ignore[attr-defined]
    return sample


def run(args: argparse.Namespace) -> int:
    from lora_bakery.extension.tqdm_sink import TqdmSink
    from lora_bakery.trainer.config import ConfigError, TrainConfig
    from lora_bakery.trainer.train import TrainError, train

    from .common import config_file_problem, make_host

    problem = config_file_problem(args.config, "config .toml (the Bake tab's Save config button writes one)")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        config = TrainConfig.load(args.config)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.skip_bad_images:
        config.training.skip_bad_images = True
    if args.out:
        config.saving.output_dir = str(args.out)
    if args.resume:
        config.saving.resume = str(args.resume)
    host = make_host(args, config.model.checkpoint, from_config=True)  # refuses when no model is named
    sink = TqdmSink()
    sampler = None if args.no_samples else host_sampler(host)
    try:
        with host.exclusive():
            result = train(config, host.model(), sink, sampler, views=host.views())
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in result.files:
        print(path)
    if result.loss_plot:
        print(result.loss_plot)
    status = f"{result.status}: {result.steps}/{result.total_steps} optimizer steps, {result.images_seen} images, {result.seconds:.1f} s"
    if result.status == "interrupted":
        status += f"; resume with: bakery train {args.config} --resume {result.state_dir}"
    print(status, file=sys.stderr)
    return 130 if result.status == "interrupted" else 0
