"""``bakery reg``: regularisation images from a training folder's own captions.

Previews by default (the prompt, size and reg path of every image, and every skipped source with
its reason); ``--generate`` makes them with the checkpoint (``--ckpt``, default the embedded tiny
model), ``--resume`` continues an interrupted run keeping every valid image, ``--overwrite`` makes
all again; ``--reroll`` / ``--delete`` review an existing reg folder. Ctrl-C stops after the
images in flight, keeping every whole image; run again with ``--resume`` to finish.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from lora_bakery.cli.common import add_model_options, make_host

#: User mistakes printed as one line.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)

#: CLI option → RegSettings field.
SETTING_OPTIONS = {
    "mode": "mode", "remove": "remove", "class_prompt": "class_prompt", "prefix": "prefix", "suffix": "suffix",
    "negative": "negative_prompt", "per_caption": "images_per_caption", "size": "size_mode",
    "resolution": "resolution", "min_bucket": "min_bucket", "max_bucket": "max_bucket", "bucket_step": "bucket_step",
    "width": "width", "height": "height", "steps": "steps", "cfg": "cfg_scale", "sampler": "sampler", "seed": "seed",
    "batch_size": "batch_size", "reg_repeats": "reg_repeats", "escape_parentheses": "escape_parentheses",
}


def add_parser(sub: Any) -> None:
    p = sub.add_parser("reg", help="regularisation images from the dataset's captions (preview, generate, review)",
                       description=__doc__.splitlines()[0])
    p.add_argument("source", help="training folder (holding the N_name concept folders), or one concept folder")
    p.add_argument("--output", "-o", help="reg folder (default: reg/ beside train/, else <name>_reg beside it)")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--generate", action="store_true", help="make the images (refuses a non-empty reg folder)")
    action.add_argument("--resume", action="store_true", help="make the missing images, keeping every valid one")
    action.add_argument("--overwrite", action="store_true", help="make every image again")
    action.add_argument("--reroll", nargs="+", metavar="IMAGE", help="re-roll these reg images (paths as listed)")
    action.add_argument("--delete", nargs="+", metavar="IMAGE", help="delete these reg images and their captions")
    action.add_argument("--list", action="store_true", help="list the images of the reg folder")
    g = p.add_argument_group("prompts")
    g.add_argument("--mode", choices=["captions", "dreambooth"], help="captions (default) or dreambooth (class prompt)")
    g.add_argument("--remove", help="triggers and un-regulated tags to remove (comma-separated; * glob, re:regex). "
                                    "Default: the dataset's leading/|||-fixed tags")
    g.add_argument("--no-suggest", dest="suggest", action="store_false", help="do not remove suggested triggers")
    g.add_argument("--class-prompt", help="dreambooth: the class (default: from the folder name, 10_sks_1girl → 1girl)")
    g.add_argument("--prefix", help="prompt-only tags before the caption")
    g.add_argument("--suffix", help="prompt-only tags after the caption")
    g.add_argument("--negative", help="negative prompt")
    g.add_argument("--escape-parentheses", action="store_true", default=None, help="escape ( ) in prompts")
    g = p.add_argument_group("images")
    g.add_argument("--per-caption", type=int, help="images per caption (default 1)")
    g.add_argument("--size", choices=["bucket", "fixed"], help="source's kohya bucket (default) or --width x --height")
    g.add_argument("--resolution", type=int, help="bucket resolution (default 512; 1024 for SDXL models)")
    g.add_argument("--min-bucket", type=int, help="smallest bucket side (default: resolution / 2)")
    g.add_argument("--max-bucket", type=int, help="largest bucket side (default: resolution × 2)")
    g.add_argument("--bucket-step", type=int, help="bucket side step (default 64)")
    g.add_argument("--width", type=int)
    g.add_argument("--height", type=int)
    g.add_argument("--steps", type=int)
    g.add_argument("--cfg", type=float)
    g.add_argument("--sampler", help="A1111 sampler name (default: the host's)")
    g.add_argument("--seed", type=int, help="-1 (default): random per image; N: image i gets N+i")
    g.add_argument("--batch-size", type=int, help="same-size images per host call (default 4)")
    g.add_argument("--reg-repeats", type=int, help="repeats of every reg folder (default: the concept's)")
    p.add_argument("--seeds", type=int, nargs="+", help="--reroll: the new seeds (default random)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--limit", type=int, default=50, help="preview rows to print (default 50, 0 = all)")
    add_model_options(p)


def settings_dict(args: argparse.Namespace, resolution_default: int | None = None) -> dict[str, Any]:
    """RegSettings fields from the options given (``None`` = default), plus suggested triggers."""
    values = {field: getattr(args, opt) for opt, field in SETTING_OPTIONS.items() if getattr(args, opt, None) is not None}
    if "resolution" not in values and resolution_default:
        values["resolution"] = resolution_default
    if "remove" not in values and args.suggest and values.get("mode", "captions") == "captions":
        from lora_bakery.extension.reg.report import suggest_remove

        values["remove"] = suggest_remove(args.source)
    return values


def _print_plan(plan: Any, args: argparse.Namespace) -> None:
    from lora_bakery.extension.dataset_ops.report import format_table
    from lora_bakery.extension.reg import report

    if args.json:
        print(json.dumps(report.plan_dict(plan, args.limit or None), indent=1))
        return
    rows = report.plan_rows(plan, args.limit or None)
    print(format_table(rows, report.PREVIEW_COLUMNS, width=50) if rows else "no reg images to make")
    if args.limit and len(plan.items) > args.limit:
        print(f"... {len(plan.items) - args.limit} more (use --limit 0)")
    if plan.skipped:
        print()
        print(format_table(report.skipped_rows(plan), report.SKIPPED_COLUMNS, width=100))
    print()
    print(report.plan_markdown(plan).replace("**", "").replace("`", ""))
    print(f"removing: {', '.join(plan.settings.remove) or '(nothing)'}")


def _review(args: argparse.Namespace, output: str) -> int:
    from lora_bakery.extension.dataset_ops.report import format_table
    from lora_bakery.extension.jobs import TqdmSink
    from lora_bakery.extension.reg import report
    from lora_bakery.extension.reg.review import list_images

    if args.list:
        rows = [r.__dict__ for r in list_images(output)]
        print(json.dumps(rows, indent=1) if args.json else format_table(rows) if rows else "no reg images")
        return 0
    if args.delete:
        result = report.run_delete(output, args.delete)
    else:
        result = report.run_reroll(TqdmSink(desc="re-roll"), make_host(args), output, args.reroll, args.seeds)
    print(json.dumps(result, indent=1) if args.json else result["summary"])
    return 130 if result.get("interrupted") else (1 if result["refused"] and not result["changed"] else 0)


def run(args: argparse.Namespace) -> int:
    from lora_bakery.extension.dataset_ops.registry import folder_problem
    from lora_bakery.extension.jobs import TqdmSink
    from lora_bakery.extension.reg import RegSettings, generate_reg, plan_reg
    from lora_bakery.extension.reg.plan import default_output_dir

    try:
        problem = folder_problem(args.source)
        if problem:
            raise ValueError(problem)
        output = args.output or str(default_output_dir(args.source))
        if args.reroll or args.delete or args.list:
            return _review(args, output)
        generating = args.generate or args.resume or args.overwrite
        host = make_host(args) if generating else None
        arch_resolution = 1024 if host is not None and host.model().architecture == "sdxl" else None
        settings = RegSettings.from_dict(settings_dict(args, arch_resolution))
        plan = plan_reg(args.source, output, settings)
        if not generating:
            _print_plan(plan, args)
            if not args.json:
                print("preview only: add --generate to make them (--resume to continue an interrupted run)")
            return 0
        if not plan.items:
            raise ValueError("nothing to generate: every source image was skipped (see `bakery reg SOURCE`)")
        existing = "resume" if args.resume else "overwrite" if args.overwrite else "error"
        run_ = generate_reg(host, plan, TqdmSink(desc="reg images"), existing=existing)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(run_.to_dict(), indent=1) if args.json else run_.summary())
    return 130 if run_.interrupted else 0
