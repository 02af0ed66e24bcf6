"""Options shared by subcommands: which checkpoint to use.

A command that trains or generates never falls back to the embedded tiny test model on its own: a
LoRA trained on random weights (``ss_sd_model_name = tiny-sd15.safetensors``) looks like a finished
run and is useless. The model is ``--ckpt PATH``, the config's ``model.checkpoint``, or the tiny
model asked for by name with ``--tiny``; with none of them the command refuses (:class:`NoModel`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lora_bakery.extension.host.base import HostError


class NoModel(HostError):
    """No model named: the message points at ``--ckpt`` and ``--tiny`` (the CLI prints it, exit code 1)."""


def no_model_message(command: str, config_key: bool = False) -> str:
    """Why ``command`` refuses to run without a model, and the two ways to name one."""
    where = " or set model.checkpoint in the config" if config_key else ""
    return (f"bakery {command}: no model named. Give --ckpt PATH (your single-file SD1.5/SDXL .safetensors "
            f"checkpoint){where}; --tiny sd15 (or sdxl) runs the embedded tiny test model, with random weights, "
            "for trying the tools only.")


def config_file_problem(path: Path, what: str = "config .toml") -> str | None:
    """Why ``path`` cannot be the config file asked for (missing, a folder), or ``None``."""
    if path.is_dir():
        return f"{path} is a folder, not a file: give the {what}"
    if not path.exists():
        return f"{path} does not exist: give the {what}"
    return None


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--ckpt", type=Path, help="single-file SD1.5/SDXL .safetensors checkpoint")
    group.add_argument("--tiny", choices=["sd15", "sdxl"],
                       help="the embedded tiny test model (random weights: for trying the tools, not for real LoRAs)")
    parser.add_argument("--tokenizer", type=Path, help="folder with the CLIP tokenizer files (when not found offline)")


def resolve_checkpoint(args: argparse.Namespace, configured: str | None = None, *, from_config: bool = False,
                       tiny_default: bool = False) -> Path:
    """The checkpoint the user named: ``--ckpt``, else ``--tiny``, else ``configured`` (``model.checkpoint``).

    Args:
        args (`argparse.Namespace`): with ``ckpt`` / ``tiny`` from :func:`add_model_options`.
        configured (`str`, *optional*): the config file's ``model.checkpoint``.
        from_config (`bool`, *optional*): the command reads a config with ``model.checkpoint`` (said in the message).
        tiny_default (`bool`, *optional*): fall back to the tiny SD1.5 model (``bakery doctor`` only, which
            prints the checkpoint it checked).

    Raises:
        NoModel: nothing named and no fallback allowed.
    """
    if getattr(args, "ckpt", None):
        return Path(args.ckpt)
    tiny = getattr(args, "tiny", None)
    if not tiny and configured:
        return Path(configured)
    if not tiny and not tiny_default:
        raise NoModel(no_model_message(getattr(args, "command", None) or "", from_config))
    from lora_bakery.trainer.tiny import tiny_checkpoint

    return tiny_checkpoint(tiny or "sd15")


def make_host(args: argparse.Namespace, configured: str | None = None, *, from_config: bool = False,
              tiny_default: bool = False):  # -> DiffusersHost
    """A ``DiffusersHost`` over the checkpoint :func:`resolve_checkpoint` names."""
    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    path = resolve_checkpoint(args, configured, from_config=from_config, tiny_default=tiny_default)
    return DiffusersHost(path, tokenizer_dir=getattr(args, "tokenizer", None))
