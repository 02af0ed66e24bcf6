"""``bakery app``: the standalone web UI (same tabs as inside A1111) over a DiffusersHost.

Also ``python -m lora_bakery.extension.app`` (same options). The UI and the ``/bakery/v1`` API
listen on 127.0.0.1 unless ``--listen``/``--share``; ``--auth`` guards both (gradio's login for the
UI, HTTP Basic for the API); ``--allow`` names the folders the API may use.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    add_arguments(sub.add_parser("app", help="start the standalone web UI"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bakery app``."""
    p.add_argument("--ckpt", help="single-file SD1.5/SDXL .safetensors checkpoint (without it: the embedded tiny "
                   "test model, said in the page header)")
    p.add_argument("--tokenizer", help="folder with the CLIP tokenizer files")
    p.add_argument("--port", type=int, default=None, help="port (default: 7870 or the next free one)")
    p.add_argument("--share", action="store_true", help="ask gradio for a public share link (needs network)")
    p.add_argument("--listen", action="store_true",
                   help="serve on 0.0.0.0 so other machines can reach it (the API's writing routes then need --auth)")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASS",
                   help="credentials for the UI and the /bakery/v1 API, as A1111's --api-auth (u1:p1,u2:p2); repeatable")
    p.add_argument("--auth-file", metavar="FILE",
                   help="credentials from a file: user:password entries, one per line or comma-separated "
                        "(as A1111's --gradio-auth-path)")
    p.add_argument("--allow", action="append", default=[], metavar="DIR",
                   help="a folder the /bakery/v1 API may read and write; repeatable (folders opened in the tabs "
                        "are allowed too)")
    p.add_argument("--inbrowser", action="store_true", help="open a browser tab")


def gates_from_args(args: argparse.Namespace) -> Any:
    """The ``ApiGates`` for the options (``--auth``, ``--auth-file``, ``--listen``, ``--share``, ``--allow``).

    Raises:
        ValueError: unreadable credentials file, or ``--auth`` without any ``USER:PASS``.
    """
    from lora_bakery.extension.api_gates import ApiGates, parse_api_auth, read_auth_file

    credentials: dict[str, str] = {}
    for text in args.auth:
        credentials.update(parse_api_auth(text))
    if args.auth and not credentials:
        raise ValueError("--auth: give USER:PASS (several as u1:p1,u2:p2)")
    if args.auth_file:
        credentials.update(read_auth_file(args.auth_file))
    return ApiGates.for_app(credentials, listen=args.listen, share=args.share, allow=args.allow)


def startup_line(ckpt: str | None) -> str:
    """What the console says first: the model the app runs on (the tiny test model when no ``--ckpt``)."""
    if ckpt:
        return f"bakery app: checkpoint {ckpt}"
    return ("bakery app: no --ckpt, running the embedded tiny test model (random weights: for trying the tabs; "
            "its LoRAs are useless). Start with --ckpt PATH.safetensors to bake on your checkpoint.")


def run(args: argparse.Namespace) -> int:
    try:
        gates = gates_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own startup checks, one line each
    from lora_bakery.extension.app import launch

    print(startup_line(args.ckpt), flush=True)
    launch(ckpt=args.ckpt, port=args.port, tokenizer_dir=args.tokenizer, share=args.share, inbrowser=args.inbrowser,
           listen=args.listen, gates=gates)
    return 0
