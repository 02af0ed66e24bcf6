"""``python -m lora_bakery.trainer train CONFIG.toml [--ckpt PATH]`` — headless training.

Also the entry for several processes: ``accelerate launch --multi_gpu --num_processes N -m
lora_bakery.trainer train CONFIG.toml`` (GPUs: NCCL; CPU-only machines: gloo). Each process loads the checkpoint itself (safetensors), trains its share of
every epoch's batches, gradients are averaged, and only the main process writes files.
No webui, no gradio, no ``lora_bakery.extension``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any


class _LineProgress:
    """Progress on stderr (tqdm when installed), main process only; Ctrl-C asks to stop."""

    def __init__(self, main: bool) -> None:
        self.main = main
        self.bar: Any = None
        self._interrupted = False
        try:
            signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread
            pass

    def _on_sigint(self, signum: int, frame: Any) -> None:
        if self._interrupted:
            raise KeyboardInterrupt
        self._interrupted = True
        print("Interrupting after the current step (Ctrl-C again to abort)...", file=sys.stderr)

    def begin(self, total: int, text: str = "") -> None:
        if not self.main:
            return
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=text, file=sys.stderr, dynamic_ncols=True)
        except ImportError:
            self.bar = None
            print(f"{text}: {total}", file=sys.stderr)

    def step(self, n: int = 1, text: str | None = None) -> None:
        if self.bar is not None:
            if text:
                self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(n)

    def preview(self, image: Any) -> None:
        pass

    def log(self, text: str) -> None:
        if self.main:
            print(text, file=sys.stderr)

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def end(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _accelerator(cpu: bool) -> Any:
    """An ``Accelerator`` when started by ``accelerate launch`` with several processes (it sets up
    the process group: gloo on CPU, NCCL on GPUs), else ``None``.

    On CPU-only machines start the processes with ``accelerate launch --multi_gpu --num_processes N``
    (accelerate's ``--cpu`` flag starts a single process); the group then uses gloo.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import Accelerator

    return Accelerator(cpu=cpu)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lora_bakery.trainer", description="LoRA Bakery headless trainer")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train the LoRA a config file describes")
    p.add_argument("config", help="config .toml (LoRA Bakery's, or a kohya dataset config)")
    p.add_argument("--ckpt", help="single-file .safetensors checkpoint (default: model.checkpoint in the config)")
    p.add_argument("--tokenizer", help="folder with the CLIP tokenizer files")
    p.add_argument("--device", help="cpu or cuda (default: the accelerator's device, else cuda when available)")
    p.add_argument("--v-pred", action="store_true", help="the checkpoint is a v-prediction model")
    p = sub.add_parser("leco", help="train the concept slider a LECO config file describes")
    p.add_argument("config", help="LECO config .toml (`bakery leco --example PATH` writes one)")
    p.add_argument("--ckpt", required=True, help="single-file .safetensors checkpoint")
    p.add_argument("--tokenizer", help="folder with the CLIP tokenizer files")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    p.add_argument("--v-pred", action="store_true", help="the checkpoint is a v-prediction model")
    return parser


def _leco(args: argparse.Namespace) -> int:
    """Headless LECO: the same ``train_leco`` as the tab, without previews (no host to render them)."""
    import torch

    from .config import ConfigError
    from .leco import LecoConfig, LecoError, train_leco
    from .loop.checkpoint import load_checkpoint

    try:
        data = LecoConfig.load(args.config).to_dict()
        data["preview"]["enabled"] = False
        config = LecoConfig.from_dict(data)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parts = load_checkpoint(args.ckpt, device, args.tokenizer, "v" if args.v_pred else "eps")
        result = train_leco(config, parts, _LineProgress(True))
    except LecoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in result.files:
        print(path)
    print(f"{result.status}: {result.steps}/{result.total_steps} steps, {result.seconds:.1f} s", file=sys.stderr)
    return 130 if result.status == "interrupted" else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "leco":
        return _leco(args)
    import torch

    from .config import ConfigError, TrainConfig
    from .loop.checkpoint import load_checkpoint
    from .train import TrainError, train

    try:
        config = TrainConfig.load(args.config)
    except (ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ckpt = args.ckpt or config.model.checkpoint
    if not ckpt:
        print("error: no checkpoint: pass --ckpt PATH or set model.checkpoint in the config", file=sys.stderr)
        return 2
    cpu = args.device == "cpu" or not torch.cuda.is_available()
    accelerator = _accelerator(cpu)
    main_process = accelerator is None or accelerator.is_main_process
    if args.device:
        device = args.device
    elif accelerator is not None:
        device = "cpu" if accelerator.device.type == "cpu" else str(accelerator.device)
    else:
        device = "cpu" if cpu else "cuda"
    progress = _LineProgress(main_process)
    try:
        parts = load_checkpoint(ckpt, device, args.tokenizer, "v" if args.v_pred else "eps")
        result = train(config, parts, progress)
    except TrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if main_process:
        for path in result.files:
            print(path)
        print(f"{result.status}: {result.steps} steps, {result.images_seen} images, {result.seconds:.1f} s", file=sys.stderr)
    return 130 if result.status == "interrupted" else 0


if __name__ == "__main__":
    sys.exit(main())
