"""``bakery demo``: every pipeline stage on the embedded tiny model → ``DIR/summary.json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    from lora_bakery.demo import STAGES

    p = sub.add_parser("demo", help="run every stage on the embedded tiny model and write DIR/summary.json")
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default: ./demo-out)")
    p.add_argument("--only", nargs="*", choices=list(STAGES), metavar="STAGE",
                   help=f"run only these stages: {', '.join(STAGES)}")


def run(args: argparse.Namespace) -> int:
    from lora_bakery.demo import run_demo
    from lora_bakery.extension.host.diffusers_host import DiffusersHost
    from lora_bakery.trainer.tiny import tiny_checkpoint

    host = DiffusersHost(tiny_checkpoint("sd15"))
    summary = run_demo(args.out, host, only=args.only)
    failed = [name for name, s in summary["stages"].items() if s["status"] != "ok"]
    print(f"summary: {args.out / 'summary.json'}" + (f" (failed: {', '.join(failed)})" if failed else ""))
    return 1 if failed else 0
