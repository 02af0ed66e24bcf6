"""``bakery``: the command line. One module per subcommand, registered in ``COMMANDS``.

Each command module exposes ``add_parser(subparsers)`` and ``run(args) -> int``. Later features
add their module to ``COMMANDS``; nothing else changes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from lora_bakery import __version__

# subcommand name -> module (relative to this package), imported only when needed.
COMMANDS: dict[str, str] = {
    "doctor": ".doctor",
    "app": ".app",
    "demo": ".demo",
    "train": ".train",
    "dataset": ".dataset",
    "tag": ".tag",
    "reg": ".reg",
    "compare": ".compare",
    "blocks": ".blocks",
    "leco": ".leco",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bakery", description="LoRA Bakery: bake LoRAs on the model you already have.")
    parser.add_argument("--version", action="version", version=f"lora-bakery {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        importlib.import_module(module, __name__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command], __name__)
    from lora_bakery.extension.host.base import HostError

    try:
        return int(module.run(args) or 0)
    except HostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
