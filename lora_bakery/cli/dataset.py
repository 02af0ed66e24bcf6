"""``bakery dataset``: scan, image prep, duplicates, buckets, captions, repeats, masks, undo, backups.

Every command that changes files previews by default (``--dry-run``: prints what would change) and
changes nothing until ``--apply``; applied changes are backed up under ``<root>/.bakery/backups`` and
``bakery dataset undo ROOT`` restores them byte for byte. The operations are the Dataset tab's and
the API's (``lora_bakery.extension.dataset_ops.registry``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

PREP_OPS = ("convert-png", "remove-alpha", "trim", "pad-square")

#: User mistakes and file-system refusals (read-only folder, no permission) printed as one line; anything
#: else keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError)


def add_apply_options(p: argparse.ArgumentParser) -> None:
    """``--dry-run`` (default) / ``--apply`` and ``--json``."""
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", dest="apply", action="store_false", help="print what would change (default)")
    mode.add_argument("--apply", dest="apply", action="store_true", help="make the change (backed up; undoable)")
    p.set_defaults(apply=False)
    p.add_argument("--json", action="store_true", help="print the preview as JSON")
    p.add_argument("--limit", type=int, default=50, help="rows of the preview to print (default 50, 0 = all)")


def _root_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("root", type=Path, help="training folder (holding the N_name concept folders)")


def _caption_args(p: argparse.ArgumentParser) -> None:
    from lora_bakery.extension.dataset_ops.caption_ops import CAPTION_OPS

    p.add_argument("op", choices=list(CAPTION_OPS), help="; ".join(f"{k}: {v}" for k, v in CAPTION_OPS.items()))
    p.add_argument("--triggers", help="add-triggers/sort-tags: trigger tags, comma-separated, in order")
    p.add_argument("--no-separator", dest="separator", action="store_false", help="do not insert '|||' after triggers")
    p.add_argument("--patterns", help="remove-tags / remove-useless / prune-traits: tags or patterns (* glob, re:regex)")
    p.add_argument("--mapping", help="replace-tags: 'old=new; old2=a, b' pairs")
    p.add_argument("--synonyms", help="synonyms: extra 'variant=canonical' pairs")
    p.add_argument("--trigger", help="prune-traits / prune-outfit: the trigger that absorbs the pruned tags")
    p.add_argument("--categories", help="prune-traits: trait categories (default: the ticked ones)")
    p.add_argument("--pieces", help="prune-outfit: outfit piece tags (default: suggested from the captions)")
    p.add_argument("--min-share", type=float, help="prune-outfit: share of captions a suggested piece needs (0.5)")
    p.add_argument("--underscores", choices=["spaces", "underscores", "keep"], help="normalize-tags (default spaces)")
    p.add_argument("--escape", choices=["escape", "unescape"], help="normalize-tags: parentheses")
    p.add_argument("--lowercase", action="store_true", help="normalize-tags: lowercase")
    p.add_argument("--merge", action="store_true", help="consolidate: also merge tags sharing a noun (opt-in)")
    p.add_argument("--skip-rule", action="append", dest="skip_rules", help="rule (as printed) not to apply; repeatable")
    p.add_argument("--all", dest="all_of", help="filter: captions with all of these tags")
    p.add_argument("--any", dest="any_of", help="filter: captions with any of these tags")
    p.add_argument("--none", dest="none_of", help="filter: captions with none of these tags")
    p.add_argument("--create-missing", action="store_true", help="also create captions for images without one")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("dataset", help="prepare a training folder: scan, prep, dupes, buckets, captions, repeats, undo",
                       description=__doc__.splitlines()[0])
    ds = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    s = ds.add_parser("scan", help="counts per concept folder and every problem found")
    _root_arg(s)
    s.add_argument("--json", action="store_true")
    s.add_argument("--problems", type=int, default=30, help="problems to print (default 30, 0 = all)")

    s = ds.add_parser("prep", help="image prep: " + ", ".join(PREP_OPS))
    _root_arg(s)
    s.add_argument("op", choices=PREP_OPS)
    s.add_argument("--color", help="remove-alpha / pad-square background (#rrggbb, name or r,g,b; default white)")
    s.add_argument("--fuzz", type=float, help="trim tolerance in %% (default 20)")
    s.add_argument("--paths", nargs="*", help="only these images (relative to ROOT)")
    add_apply_options(s)

    s = ds.add_parser("dupes", help="exact and near duplicates; --apply moves the others to _duplicates/")
    _root_arg(s)
    s.add_argument("--threshold", type=int, help="phash distance counted as a duplicate (default 6)")
    s.add_argument("--similar", type=int, help="up to this distance: 'similar, review' (default 10)")
    s.add_argument("--flips", action="store_true", help="a mirrored copy counts as a duplicate")
    s.add_argument("--no-trim", dest="trim", action="store_false", help="do not trim borders before hashing")
    s.add_argument("--include-similar", action="store_true", help="also move 'similar' images")
    add_apply_options(s)

    s = ds.add_parser("buckets", help="kohya buckets per image, flags and histogram; --sort --apply sorts into bucket_WxH")
    _root_arg(s)
    s.add_argument("--family", choices=["sd15", "sdxl"], default="sd15")
    s.add_argument("--resolution", type=int)
    s.add_argument("--min", type=int)
    s.add_argument("--max", type=int)
    s.add_argument("--step", type=int)
    s.add_argument("--no-upscale", action="store_true", default=None)
    s.add_argument("--sort", action="store_true", help="plan moving images into bucket_WxH subfolders")
    s.add_argument("--views", metavar="DIR", help="also write what the trainer sees (resized, cropped) as PNGs "
                                                  "into DIR (a new folder outside the dataset), flagged images first")
    add_apply_options(s)

    s = ds.add_parser("captions", help="caption batch operations (on the filtered set)")
    _root_arg(s)
    _caption_args(s)
    add_apply_options(s)

    s = ds.add_parser("repeats", help="suggest N_name repeats per folder; --apply renames")
    _root_arg(s)
    s.add_argument("--optimizer", choices=["prodigy", "adamw"])
    s.add_argument("--family", choices=["sd15", "sdxl"])
    s.add_argument("--ip-noise-min-snr", action="store_true", default=None)
    s.add_argument("--old-anime", action="store_true", default=None)
    s.add_argument("--epochs", type=int)
    s.add_argument("--concept-steps", type=int)
    s.add_argument("--subconcept-steps", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--role", action="append", help="FOLDER=subconcept (outfits); repeatable")
    add_apply_options(s)

    s = ds.add_parser("masks", help="background masks (transparent-background) into a mask folder")
    _root_arg(s)
    s.add_argument("--mask-dir", default="masks", help="mask folder relative to ROOT (default masks)")
    s.add_argument("--ckpt", help="local transparent-background checkpoint (offline use)")
    s.add_argument("--mode", default="base", choices=["base", "fast", "base-nightly"])
    s.add_argument("--overwrite", action="store_true")
    add_apply_options(s)

    s = ds.add_parser("undo", help="undo the newest applied change (or --backup NAME)")
    _root_arg(s)
    s.add_argument("--backup", help="backup folder name (see 'bakery dataset backups')")
    s.add_argument("--force", action="store_true", help="undo even files edited after the change (those edits are "
                   "backed up first: undoing the undo brings them back)")

    s = ds.add_parser("backups", help="list the backups of ROOT, newest first")
    _root_arg(s)
    s.add_argument("--json", action="store_true")


def params_from_args(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The given options (not ``None``) as an operation's params dict."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _params(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    cmd = args.dataset_command
    if cmd == "prep":
        return args.op, params_from_args(args, ["color", "fuzz", "paths"])
    if cmd == "dupes":
        return "move-duplicates", params_from_args(args, ["threshold", "similar", "flips", "trim", "include_similar"])
    if cmd == "buckets":
        return "sort-buckets", params_from_args(args, ["family", "resolution", "min", "max", "step", "no_upscale"])
    if cmd == "captions":
        names = ["triggers", "separator", "patterns", "mapping", "synonyms", "trigger", "categories", "pieces",
                 "min_share", "underscores", "escape", "lowercase", "merge", "skip_rules", "all_of", "any_of",
                 "none_of", "create_missing"]
        return args.op, params_from_args(args, names)
    if cmd == "repeats":
        params = params_from_args(args, ["optimizer", "family", "ip_noise_min_snr", "old_anime", "epochs",
                                         "concept_steps", "subconcept_steps", "batch_size"])
        if args.role:
            params["roles"] = dict(r.split("=", 1) for r in args.role if "=" in r)
        return "repeats", params
    if cmd == "masks":
        return "masks", params_from_args(args, ["mask_dir", "ckpt", "mode", "overwrite"])
    raise ValueError(f"unknown dataset action {cmd!r}")


def print_preview(done: Any, as_json: bool, limit: int, applied: Any = None) -> None:
    """Print a ``registry.Preview`` (and its backup when applied) as text or JSON."""
    from lora_bakery.extension.dataset_ops import registry, report

    data = registry.preview_dict(done, limit=limit or None)
    if applied is not None:
        data["backup"] = applied.path.name
    if as_json:
        print(json.dumps(data, indent=1, default=str))
        return
    extra = data["extra"]
    if extra.get("histogram"):
        print(report.format_table(extra["histogram"]))
    if extra.get("rows") and done.op == "repeats":
        print(report.format_table(extra["rows"], ["folder", "images", "repeats", "new_name", "steps_per_epoch",
                                                  "total_steps", "notes"]))
        print(f"all folders: {extra['main_per_epoch']} steps/epoch, {extra['main_total']} in {extra['epochs']} epochs")
    if extra.get("rules"):
        print(report.format_table(extra["rules"], ["count", "rule", "reason"], width=80))
    for g in extra.get("groups", []):
        print(f"{g['kind']} (distance {g['distance']}): keep {g['keeper']}; others: {', '.join(g['others'])}")
    if data["rows"]:
        print(report.format_table(data["rows"], ["kind", "path", "new_path", "description"], width=70))
        if data["truncated"]:
            print(f"... {data['changes'] + data['skipped'] - len(data['rows'])} more (use --limit 0)")
    texts = extra.get("captions") or []
    if texts:
        print("\ncaptions before (-) and after (+), every line (the trainer reads line 1):")
        print(report.format_caption_texts(texts[: limit or None]))
        if limit and len(texts) > limit:
            print(f"... {len(texts) - limit} more (use --limit 0)")
    for note in data["notes"]:
        print(f"note: {note}")
    print(data["summary"])
    if applied is not None:
        print(f"applied; backup {applied.path.name} (undo: bakery dataset undo {applied.root})")
    elif data["changes"]:
        print("dry run: nothing changed; add --apply to do it")


def _scan(args: argparse.Namespace, sink: Any) -> int:
    from lora_bakery.extension.dataset.scan import scan
    from lora_bakery.extension.dataset_ops import registry, report

    result = scan(registry._root(args.root), progress=sink)
    if args.json:
        print(json.dumps(report.scan_dict(result, args.problems or None), indent=1))
        return 0
    print(report.format_table(report.folder_rows(result)))
    problems = report.problem_rows(result)
    if problems:
        print()
        for row in problems[: args.problems or None]:  # one line each, the message whole (never cut)
            print(f"{row['level']:<7}  {row['code']:<18}  {row['path']}: {row['message']}")
        if args.problems and len(problems) > args.problems:
            print(f"... {len(problems) - args.problems} more (use --problems 0)")
    print()
    print(report.scan_markdown(result).replace("**", "").replace("`", ""))
    return 0


def _run(args: argparse.Namespace) -> int:
    from lora_bakery.extension.dataset_ops import registry, report
    from lora_bakery.extension.jobs import TqdmSink

    sink = TqdmSink(desc="dataset")
    cmd = args.dataset_command
    if cmd == "scan":
        return _scan(args, sink)
    if cmd == "backups":
        rows = registry.backup_rows(args.root)
        print(json.dumps(rows, indent=1) if args.json else report.format_table(rows) if rows else "no backups")
        return 0
    if cmd == "undo":
        from lora_bakery.extension.dataset.safety import undo_message

        rec = registry.undo(args.root, args.backup, force=args.force)
        print(undo_message(rec, f"`bakery dataset undo {args.root}`"))
        return 0
    op, params = _params(args)
    if cmd == "buckets" and not args.sort:
        from lora_bakery.extension.dataset.scan import scan

        buckets, facts = registry.bucket_facts(scan(registry._root(args.root)), params)
        if args.views:
            _write_views(registry._root(args.root), buckets, Path(args.views), args.limit or 0)
        if args.json:
            print(json.dumps(facts, indent=1))
            return 0
        print(report.format_table(facts["histogram"]))
        flagged = [r for r in facts["rows"] if r["flags"]]
        if flagged:
            print()
            print(report.format_table(flagged[: args.limit or None], ["path", "size", "bucket", "flags"], width=90))
        print(f"{len(facts['rows'])} images, {facts['flagged']} flagged")
        return 0
    if args.apply:
        done, record = registry.apply(args.root, op, params, progress=sink)
        print_preview(done, args.json, args.limit, record)
    else:
        print_preview(registry.preview(args.root, op, params, progress=sink), args.json, args.limit)
    return 0


def _write_views(root: Path, buckets: Any, out: Path, limit: int) -> None:
    """Write the trainer's view of each image (flagged first) as ``NNNN_<name>_<bucket>.png`` into a new ``out``."""
    from lora_bakery.extension.dataset.bucketing import trainer_views

    if out.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{out}: inside the dataset, where the views would be trained on; choose a folder outside it")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out}: not empty; choose a new folder for the views (nothing is overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for row, image in trainer_views(root, buckets, limit or None):
        w, h = row.choice.bucket
        image.save(out / f"{written:04d}_{Path(row.path).stem}_{w}x{h}.png")
        written += 1
    print(f"wrote {written} trainer view(s) to {out}")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
