"""``bakery app``: the standalone web UI (same tabs as inside A1111) over a DiffusersHost."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser("app", help="start the standalone web UI")
    p.add_argument("--ckpt", help="single-file SD1.5/SDXL .safetensors checkpoint (without it: the embedded tiny "
                   "test model, said in the page header)")
    p.add_argument("--tokenizer", help="folder with the CLIP tokenizer files")
    p.add_argument("--port", type=int, default=None, help="port (default: 7870 or the next free one)")
    p.add_argument("--share", action="store_true", help="ask gradio for a public share link (needs network)")
    p.add_argument("--inbrowser", action="store_true", help="open a browser tab")


def startup_line(ckpt: str | None) -> str:
    """What the console says first: the model the app runs on (the tiny test model when no ``--ckpt``)."""
    if ckpt:
        return f"bakery app: checkpoint {ckpt}"
    return ("bakery app: no --ckpt, running the embedded tiny test model (random weights: for trying the tabs; "
            "its LoRAs are useless). Start with --ckpt PATH.safetensors to bake on your checkpoint.")


def run(args: argparse.Namespace) -> int:
    from lora_bakery.extension.app import launch

    print(startup_line(args.ckpt), flush=True)

    launch(ckpt=args.ckpt, port=args.port, tokenizer_dir=args.tokenizer, share=args.share, inbrowser=args.inbrowser)
    return 0
