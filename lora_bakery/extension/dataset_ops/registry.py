"""Every dataset operation by name: ``preview`` (a plan, nothing written), ``apply`` (backup, then write), ``undo``.

One table (:data:`OPERATIONS`) maps a name to a planner ``(root, scan, params, progress) -> Preview``;
the Dataset tab, ``bakery dataset …`` and ``POST /bakery/v1/dataset/{preview,apply}`` all go through
:func:`preview` and :func:`apply`, so an operation behaves the same everywhere. ``apply`` plans again
from the files as they are now (never from a stale preview) and hands the plan to
``dataset.safety.apply``, which backs up every touched file first; :func:`undo` restores it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from lora_bakery.extension.dataset import safety
from lora_bakery.extension.dataset.safety import BackupRecord, Plan, SafetyError
from lora_bakery.extension.dataset.scan import ScanResult, scan
from lora_bakery.extension.dataset_ops import caption_ops, report
from lora_bakery.extension.dataset_ops.captions import load_captions
from lora_bakery.extension.dataset_ops.params import color, flag, image_paths, num

_16BIT = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


@dataclass
class Preview:
    """What an operation would do, ready to show.

    Attributes:
        op (`str`): the operation name.
        plan (`Plan`): the changes (``safety.preview(plan)`` gives table rows).
        notes (`list[str]`): things to tell the user.
        extra (`dict`): operation-specific, JSON-ready facts (rules, duplicate groups, bucket
            histogram, repeats table, tagger statistics).
    """

    op: str
    plan: Plan
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return safety.summary(self.plan)


Planner = Callable[[Path, ScanResult, Mapping[str, Any], Any], Preview]


# ------------------------------------------------------------------ image and folder planners

def _convert_png(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.imageprep import plan_convert_to_png

    def needs(im: Any) -> bool:
        return im.format != "PNG" or im.orientation != 1 or im.frames > 1 or im.mode in _16BIT

    return Preview("convert-png", plan_convert_to_png(root, image_paths(params, result, needs)))


def _remove_alpha(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.imageprep import plan_remove_alpha

    paths = image_paths(params, result, lambda im: im.has_alpha)
    return Preview("remove-alpha", plan_remove_alpha(root, paths, color(params)))


def _trim(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.imageprep import plan_trim

    fuzz = num(params, "fuzz", 20.0)
    return Preview("trim", plan_trim(root, image_paths(params, result, lambda im: True), fuzz))


def _pad_square(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.imageprep import plan_pad_square

    paths = image_paths(params, result, lambda im: im.width != im.height)
    return Preview("pad-square", plan_pad_square(root, paths, color(params)))


def _duplicates(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.duplicates import (
        DUPLICATE_DISTANCE,
        SIMILAR_DISTANCE,
        find_duplicates,
        plan_move_duplicates,
    )

    report = find_duplicates(
        root, image_paths(params, result, lambda im: True),
        threshold=num(params, "threshold", DUPLICATE_DISTANCE, int),
        similar=num(params, "similar", SIMILAR_DISTANCE, int),
        flips=flag(params, "flips"), trim=flag(params, "trim", True), progress=progress,
    )
    plan = plan_move_duplicates(root, report, include_similar=flag(params, "include_similar"))
    groups = [{"kind": g.kind, "keeper": g.keeper, "distance": g.distance, "others": g.others,
               "members": [{"path": m.path, "size": f"{m.width}x{m.height}", "sharpness": round(m.sharpness, 1)}
                           for m in g.members]} for g in report.groups]
    notes = [f"unreadable: {p} ({why})" for p, why in report.unreadable]
    return Preview("move-duplicates", plan, notes, {"groups": groups})


def bucket_settings(params: Mapping[str, Any]) -> Any:
    """``BucketSettings`` from ``family`` (sd15/sdxl) and optional ``resolution``/``min``/``max``/``step``/``no_upscale``."""
    from lora_bakery.trainer.data.buckets import BucketSettings

    family = str(params.get("family") or "sd15")
    over: dict[str, Any] = {}
    if params.get("resolution"):
        side = num(params, "resolution", 512, int)
        over["resolution"] = (side, side)
    for key, name in (("min", "min_reso"), ("max", "max_reso"), ("step", "step")):
        if params.get(key) not in (None, ""):
            over[name] = num(params, key, 0, int)
    if params.get("no_upscale") is not None:
        over["no_upscale"] = flag(params, "no_upscale")
    settings = BucketSettings.for_family(family, **over)
    settings.snapped()  # raises a ValueError naming min/max when the resolution is outside them
    return settings


def bucket_facts(result: ScanResult, params: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """(``DatasetBuckets``, JSON facts: histogram, per-image rows with flags) for the scan."""
    from lora_bakery.extension.dataset.bucketing import bucket_dataset

    buckets = bucket_dataset(result, bucket_settings(params))
    rows = [{"path": r.path, "size": f"{r.choice.size[0]}x{r.choice.size[1]}",
             "bucket": f"{r.choice.bucket[0]}x{r.choice.bucket[1]}", "scale": round(r.choice.scale, 3),
             "flags": r.flags} for r in buckets.rows]
    hist = [{"bucket": f"{w}x{h}", "images": buckets.images_per_bucket.get((w, h), 0), "samples_per_epoch": n}
            for (w, h), n in buckets.histogram.items()]
    return buckets, {"histogram": hist, "rows": rows, "flagged": sum(1 for r in rows if r["flags"])}


def _sort_buckets(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.bucketing import plan_sort_into_buckets

    buckets, facts = bucket_facts(result, params)
    notes = ["kohya reads only the concept folder itself: sorted subfolders are for review; undo puts them back"]
    return Preview("sort-buckets", plan_sort_into_buckets(result, buckets), notes, facts)


def recipe(params: Mapping[str, Any]) -> Any:
    """The repeats ``Recipe`` from params (field names as in ``dataset.repeats.Recipe``)."""
    from lora_bakery.extension.dataset.repeats import Recipe

    kwargs: dict[str, Any] = {}
    for f in fields(Recipe):
        if params.get(f.name) in (None, ""):
            continue
        if f.name in ("optimizer", "family"):
            kwargs[f.name] = str(params[f.name]).lower()
        elif f.name in ("ip_noise_min_snr", "old_anime"):
            kwargs[f.name] = flag(params, f.name)
        else:
            kwargs[f.name] = num(params, f.name, 0, int)
    return Recipe(**kwargs)


def repeats_table(result: ScanResult, params: Mapping[str, Any]) -> Any:
    """The ``Balance`` for the scanned folders (``roles``: folder → concept/subconcept)."""
    from lora_bakery.extension.dataset.repeats import balance, folder_counts

    roles = params.get("roles") or {}
    if isinstance(roles, str):
        roles = caption_ops.parse_mapping(roles)
    return balance(folder_counts(result, dict(roles)), recipe(params))


def _repeats(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.repeats import follow_masks, plan_renames

    bal = repeats_table(result, params)
    rows = [{"folder": r.folder, "images": r.images, "role": r.role, "repeats": r.repeats, "new_name": r.new_name,
             "steps_per_epoch": r.steps_per_epoch, "total_steps": r.total_steps,
             "optimizer_steps_per_epoch": r.optimizer_steps_per_epoch, "notes": r.notes} for r in bal.rows]
    extra = {"rows": rows, "main_per_epoch": bal.main_per_epoch, "main_total": bal.main_total,
             "epochs": bal.recipe.epochs}
    return Preview("repeats", follow_masks(plan_renames(bal), root), list(bal.notes), extra)


def _masks(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.dataset.masks import check_mask_dir, default_remover, plan_masks

    mask_dir = check_mask_dir(str(params.get("mask_dir") or ""))
    remover = params.get("remover")  # a Python caller (tests) may pass a remover object
    if remover is None:
        remover = default_remover(params.get("ckpt") or None, str(params.get("mode") or "base"))
    images = image_paths(params, result, lambda im: True)
    plan, results = plan_masks(root, images, mask_dir, remover, overwrite=flag(params, "overwrite"),
                               progress=progress)
    flagged = [{"image": r.image, "mask": r.mask, "flags": r.flags, "coverage": round(r.coverage, 3)}
               for r in results if r.flags]
    return Preview("masks", plan, [], {"flagged": flagged, "masks": len(results)})


def _caption_planner(op: str) -> Planner:
    def plan(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
        cp = caption_ops.preview_caption_op(load_captions(result), op, params)
        rules = [{"rule": r.describe(), "kind": r.kind, "count": r.count, "reason": r.reason} for r in cp.rules]
        diffs = {k: caption_ops.caption_text_after(old, new) for k, (old, new) in cp.changed.items()}
        extra = {"rules": rules, "filtered": len(cp.keys), "changed": len(cp.changed), "diffs": diffs,
                 "captions": report.caption_texts(root, cp.plan)}
        return Preview(op, cp.plan, cp.notes, extra)

    return plan


def _tag(root: Path, result: ScanResult, params: Mapping[str, Any], progress: Any) -> Preview:
    from lora_bakery.extension.tagger.workflow import tag_dataset

    settings = tag_settings(params)
    images = [root / p for p in image_paths(params, result, lambda im: True)]
    run, plan = tag_dataset(images, settings, progress=progress)
    notes = list(run.notes) + (["interrupted: the plan covers the images tagged so far"] if run.interrupted else [])
    extra = {"tagged": len(run.results), "skipped": len(run.skipped), "seconds": round(run.seconds, 2),
             "tags": sorted({t for r in run.results for t in r.tags}), "interrupted": run.interrupted,
             "captions": report.caption_texts(root, plan, settings.caption_extension)}
    return Preview("tag", plan, notes, extra)


def tag_settings(params: Mapping[str, Any]) -> Any:
    """``TagSettings`` from params named like its fields (``models`` may be one string or a list)."""
    from lora_bakery.extension.tagger.workflow import TagSettings

    kwargs: dict[str, Any] = {}
    for f in fields(TagSettings):
        if params.get(f.name) in (None, "") or f.name == "providers":
            continue
        value = params[f.name]
        if f.name in ("models", "exclude"):
            value = caption_ops.as_list(value)
        elif f.name in ("general_threshold", "character_threshold"):
            value = num(params, f.name, 0.0)
        elif f.name in ("batch_size", "max_tags", "workers"):
            value = num(params, f.name, 0, int)
        elif f.name in ("general_mcut", "character_mcut", "replace_underscores", "escape_parentheses",
                        "characters_first", "download"):
            value = flag(params, f.name)
        kwargs[f.name] = value
    if params.get("model") and "models" not in kwargs:
        kwargs["models"] = caption_ops.as_list(params["model"])
    return TagSettings(**kwargs)


#: Operation name → (planner, one-line help).
OPERATIONS: dict[str, tuple[Planner, str]] = {
    "convert-png": (_convert_png, "convert to PNG: every GIF/WebP frame its own file, EXIF rotation applied"),
    "remove-alpha": (_remove_alpha, "composite transparent images onto white (or 'color')"),
    "trim": (_trim, "trim uniform padding ('fuzz' tolerance in %, like ImageMagick -fuzz)"),
    "pad-square": (_pad_square, "pad to a centred square with 'color'"),
    "move-duplicates": (_duplicates, "move exact and near duplicates to _duplicates/ (keeper: largest, sharpest)"),
    "sort-buckets": (_sort_buckets, "move images into bucket_WxH subfolders to review them by bucket"),
    "repeats": (_repeats, "rename folders to the suggested N_name repeats"),
    "masks": (_masks, "masks with transparent-background into a mask folder"),
    "tag": (_tag, "tag images with WD14 ONNX tagger(s) into their captions"),
    **{name: (_caption_planner(name), text) for name, text in caption_ops.CAPTION_OPS.items()},
}


def folder_problem(root: str | os.PathLike) -> str | None:
    """Why ``root`` is not a usable training folder (missing, a file, empty text), or ``None``."""
    text = os.fspath(root).strip() if root is not None else ""
    if not text:
        return "no training folder given: enter the folder holding the N_name concept folders"
    path = Path(os.path.abspath(os.path.expanduser(text)))
    if path.is_file():
        from lora_bakery.trainer.data.folders import parse_concept_folder

        hint = f" (for this file: {path.parent.parent})" if parse_concept_folder(path.parent.name)[0] else ""
        return f"{path} is a file, not a folder: give the training folder holding the N_name concept folders{hint}"
    if not path.is_dir():
        return f"training folder {path} does not exist (give the folder holding the N_name concept folders)"
    return None


def _root(root: str | os.PathLike) -> Path:
    problem = folder_problem(root)
    if problem:
        raise ValueError(problem)
    return Path(os.path.abspath(os.path.expanduser(os.fspath(root).strip())))


def preview(root: str | os.PathLike, op: str, params: Mapping[str, Any] | None = None, *,
            progress: Any = None, scan_result: ScanResult | None = None) -> Preview:
    """Plan operation ``op`` on the training folder ``root``; nothing is written.

    Args:
        root (`str | os.PathLike`): the training folder.
        op (`str`): a key of :data:`OPERATIONS`.
        params (`Mapping`, *optional*): the operation's options (see ``bakery dataset --help``).
        progress (*optional*): a ``Progress`` (job context or tqdm sink) for long operations.
        scan_result (`ScanResult`, *optional*): a fresh scan of ``root`` to reuse.

    Returns:
        `Preview`: the plan plus notes and facts.

    Raises:
        ValueError: unknown operation, missing folder, or a bad option (the message names it).
    """
    if op not in OPERATIONS:
        raise ValueError(f"unknown operation {op!r}; one of {', '.join(OPERATIONS)}")
    path = _root(root)
    result = scan_result if scan_result is not None else scan(path)
    return OPERATIONS[op][0](path, result, dict(params or {}), progress)


def apply(root: str | os.PathLike, op: str, params: Mapping[str, Any] | None = None, *,
          progress: Any = None, planned: Preview | None = None) -> tuple[Preview, BackupRecord]:
    """Plan ``op`` again and apply it with a backup (see ``dataset.safety.apply``).

    Args:
        root, op, params, progress: as in :func:`preview`.
        planned (`Preview`, *optional*): apply this preview's plan instead of planning again (for
            expensive plans such as tagging, applied right after they were made).

    Returns:
        `tuple[Preview, BackupRecord]`: what was applied and its backup (for :func:`undo`).

    Raises:
        ValueError: as :func:`preview`; SafetyError: nothing to apply, or the plan failed (rolled back).
    """
    done = planned if planned is not None else preview(root, op, params, progress=progress)
    if not done.plan.changes:
        raise SafetyError(f"{op}: nothing to change" + (f" ({len(done.plan.skipped)} skipped)" if done.plan.skipped else ""))
    record = safety.apply(done.plan, _root(root))
    return done, record


def latest_backup(root: str | os.PathLike) -> BackupRecord | None:
    """The newest backup that can still be undone (status ``applied``), or ``None``."""
    for rec in safety.list_backups(_root(root)):
        if rec.status == "applied":
            return rec
    return None


def undo(root: str | os.PathLike, backup: str | None = None, *, force: bool = False) -> BackupRecord:
    """Undo a backup of ``root``: the newest applied one, or the one named ``backup`` (folder name or path).

    Raises:
        SafetyError: nothing to undo, or files changed since (nothing touched; see ``force``).
    """
    path = _root(root)
    if backup:
        candidate = Path(backup)
        folder = candidate if candidate.is_absolute() else safety.backups_dir(path) / candidate.name
        if not folder.is_dir():
            raise SafetyError(f"no backup named {backup!r} in {safety.backups_dir(path)}")
        return safety.undo(folder, force=force)
    rec = latest_backup(path)
    if rec is None:
        raise SafetyError(f"nothing to undo in {path}: no applied change is backed up")
    return safety.undo(rec, force=force)


def backup_rows(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Backups of ``root``, newest first: name, operation, time, status, number of changes."""
    import time

    return [{"name": r.path.name, "op": r.op, "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created)),
             "status": r.status, "changes": len(r.entries)} for r in safety.list_backups(_root(root))]


def preview_dict(done: Preview, limit: int | None = 500) -> dict[str, Any]:
    """A JSON-ready preview: summary, rows (the first ``limit``), notes and the operation's facts."""
    rows = safety.preview(done.plan)
    return {"op": done.op, "summary": done.summary, "changes": len(done.plan.changes),
            "skipped": len(done.plan.skipped), "rows": rows[:limit] if limit else rows,
            "truncated": bool(limit) and len(rows) > limit, "notes": done.notes, "extra": done.extra}
