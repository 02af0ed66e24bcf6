"""Options shared by subcommands: which checkpoint to use."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--ckpt", type=Path, help="single-file SD1.5/SDXL .safetensors checkpoint")
    group.add_argument("--tiny", choices=["sd15", "sdxl"], help="the embedded tiny model (default: sd15)")
    parser.add_argument("--tokenizer", type=Path, help="folder with the CLIP tokenizer files (when not found offline)")


def resolve_checkpoint(args: argparse.Namespace) -> Path:
    """The checkpoint the user asked for, or the embedded tiny SD1.5 model."""
    if getattr(args, "ckpt", None):
        return Path(args.ckpt)
    from lora_bakery.trainer.tiny import tiny_checkpoint

    return tiny_checkpoint(getattr(args, "tiny", None) or "sd15")


def make_host(args: argparse.Namespace):  # -> DiffusersHost
    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    return DiffusersHost(resolve_checkpoint(args), tokenizer_dir=getattr(args, "tokenizer", None))
