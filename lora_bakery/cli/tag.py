"""``bakery tag DIR``: tag a training folder's images with WD14 ONNX tagger(s) into their captions.

Previews by default (the new captions are printed, nothing is written); ``--apply`` writes them,
backed up, so ``bakery dataset undo DIR`` restores the old captions. ``--model`` takes a folder
with ``model.onnx`` + ``selected_tags.csv``, a known name (``wd-vit-tagger-v3``) or an HF repo id
(downloaded on first use when online); repeat it to union several taggers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lora_bakery.cli.dataset import USER_ERRORS, add_apply_options, params_from_args, print_preview


def add_parser(sub: Any) -> None:
    p = sub.add_parser("tag", help="tag images with WD14 ONNX taggers into their .txt captions",
                       description=__doc__.splitlines()[0])
    p.add_argument("root", type=Path, help="training folder (or one concept folder)")
    p.add_argument("--model", action="append", dest="models",
                   help="tagger folder, known name or HF repo id; repeat to union (default wd-v1-4-vit-tagger-v2)")
    p.add_argument("--models-dir", help="where named taggers are stored / downloaded")
    p.add_argument("--offline", dest="download", action="store_false", default=None, help="never download")
    p.add_argument("--threshold", dest="general_threshold", type=float, help="general tags (default 0.35)")
    p.add_argument("--character-threshold", type=float, help="character tags (default 0.85)")
    p.add_argument("--mcut", dest="general_mcut", action="store_true", default=None, help="MCut for general tags")
    p.add_argument("--character-mcut", action="store_true", default=None, help="MCut for character tags")
    p.add_argument("--mode", choices=["skip", "overwrite", "prepend", "append"], help="existing captions (default skip)")
    p.add_argument("--exclude", help="tags or patterns never written, comma-separated")
    p.add_argument("--keep-underscores", dest="replace_underscores", action="store_false", default=None)
    p.add_argument("--escape", dest="escape_parentheses", action="store_true", default=None, help="escape ( )")
    p.add_argument("--rating", choices=["none", "first", "last"], help="add the most likely rating tag")
    p.add_argument("--max-tags", type=int)
    p.add_argument("--batch-size", type=int, help="images per inference call (default 8)")
    p.add_argument("--paths", nargs="*", help="only these images (relative to ROOT)")
    add_apply_options(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from lora_bakery.extension.dataset_ops import registry
    from lora_bakery.extension.jobs import TqdmSink

    names = ["models", "models_dir", "download", "general_threshold", "character_threshold", "general_mcut",
             "character_mcut", "mode", "exclude", "replace_underscores", "escape_parentheses", "rating", "max_tags",
             "batch_size", "paths"]
    params = params_from_args(args, names)
    sink = TqdmSink(desc="tagging")
    try:
        done = registry.preview(args.root, "tag", params, progress=sink)
        if args.apply and done.plan.changes:
            done, record = registry.apply(args.root, "tag", params, planned=done)
            print_preview(done, args.json, args.limit, record)
        else:
            print_preview(done, args.json, args.limit)
        extra = done.extra
        if not args.json:
            print(f"tagged {extra['tagged']} image(s) in {extra['seconds']} s, {extra['skipped']} unreadable; "
                  f"{len(extra['tags'])} distinct tags")
        return 130 if extra.get("interrupted") else 0
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
