"""Scan results as rows and Markdown: counts per concept folder and the problems list.

Shared by the Dataset tab (tables), ``bakery dataset scan`` (printed) and the API (JSON), so the
three show the same numbers.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from lora_bakery.extension.dataset.scan import ScanResult


def folder_rows(result: ScanResult) -> list[dict[str, Any]]:
    """One row per folder: name, repeats, concept, images, usable, captioned, problems, steps per epoch."""
    rows = []
    for f in result.folders:
        usable = sum(1 for im in f.images if im.usable)
        captioned = sum(1 for im in f.images if im.caption is not None and im.caption.exists and im.caption.tags)
        problems = len(f.problems) + sum(len(im.problems) + len(im.caption.problems if im.caption else []) for im in f.images)
        rows.append({"folder": f.path or "(root)", "repeats": f.repeats, "concept": f.concept, "images": len(f.images),
                     "usable": usable, "captioned": captioned, "problems": problems,
                     "steps_per_epoch": (f.repeats or 0) * usable})
    return rows


def problem_rows(result: ScanResult, limit: int | None = None) -> list[dict[str, str]]:
    """Every problem: level, code, where, message (errors first)."""
    rows: list[dict[str, str]] = [{"level": p.level, "code": p.code, "path": "(dataset)", "message": p.message}
                                  for p in result.problems]
    for f in result.folders:
        rows += [{"level": p.level, "code": p.code, "path": f.path, "message": p.message} for p in f.problems]
        for im in f.images:
            rows += [{"level": p.level, "code": p.code, "path": im.path, "message": p.message} for p in im.problems]
            if im.caption is not None:
                rows += [{"level": p.level, "code": p.code, "path": im.path, "message": p.message}
                         for p in im.caption.problems]
    order = {"error": 0, "warning": 1, "info": 2}
    rows.sort(key=lambda r: order.get(r["level"], 3))
    return rows[:limit] if limit else rows


def scan_dict(result: ScanResult, problem_limit: int | None = 1000) -> dict[str, Any]:
    """A JSON-ready scan: totals, folders, problems and cache statistics."""
    problems = problem_rows(result)
    levels = Counter(p["level"] for p in problems)
    return {
        "root": str(result.root),
        "images": result.image_count,
        "folders": folder_rows(result),
        "problems": problems[:problem_limit] if problem_limit else problems,
        "problem_counts": dict(levels),
        "mask_folders": [{"path": m.path, "masks": m.masks, "serves": m.serves} for m in result.mask_folders],
        "cache_hits": result.cache_hits,
        "cache_misses": result.cache_misses,
        "seconds": round(result.seconds, 3),
    }


def scan_markdown(result: ScanResult) -> str:
    """A short Markdown summary: totals, steps per epoch, problem counts by level and code."""
    rows = folder_rows(result)
    problems = problem_rows(result)
    levels = Counter(p["level"] for p in problems)
    codes = Counter(p["code"] for p in problems)
    concepts = [r for r in rows if r["repeats"]]
    lines = [
        f"**{result.image_count} images** in {len(rows)} folder(s), {len(concepts)} concept folder(s) `N_name`; "
        f"scanned in {result.seconds:.2f} s ({result.cache_hits} cached, {result.cache_misses} read).",
        f"Steps per epoch (repeats × usable images): **{sum(r['steps_per_epoch'] for r in rows)}**.",
    ]
    if result.mask_folders:
        where = ", ".join(f"`{m.path}/` ({m.masks} masks" + (f" for {', '.join(m.serves)})" if m.serves else ")")
                          for m in result.mask_folders)
        lines.append(f"Mask folders (never trained as images; checked against the images): {where}.")
    if problems:
        by_level = ", ".join(f"{n} {level}(s)" for level, n in sorted(levels.items()))
        top = ", ".join(f"`{c}` ×{n}" for c, n in codes.most_common(8))
        lines.append(f"Problems: {by_level} — {top}.")
    else:
        lines.append("No problems found.")
    return "\n\n".join(lines)


def caption_texts(root: str | os.PathLike, plan: Any, extension: str = ".txt",
                  limit: int | None = 500) -> list[dict[str, Any]]:
    """Whole before/after texts (every line) of a plan's caption writes, for previews.

    Args:
        root (`str | os.PathLike`): the training folder (plan paths are relative to it, or absolute).
        plan (`Plan`): the operation's plan.
        extension (`str`, *optional*): caption extension.
        limit (`int`, *optional*): at most this many (None: all).

    Returns:
        `list[dict]`: ``{"path", "before", "after"}``; ``before`` is None for a caption file the plan creates.
    """
    out: list[dict[str, Any]] = []
    for c in plan.changes:
        if c.new_bytes is None or not c.path.endswith(extension):
            continue
        if limit is not None and len(out) >= limit:
            break
        before = None
        if c.kind == "write":
            try:
                before = (Path(root) / c.path).read_bytes().decode("utf-8", "replace")
            except OSError:
                before = None
        out.append({"path": c.path, "before": before, "after": c.new_bytes.decode("utf-8", "replace")})
    return out


def format_caption_texts(rows: list[dict[str, Any]]) -> str:
    """Before/after blocks, every line of each caption shown (``-`` before, ``+`` after, line 1 is trained)."""
    from lora_bakery.trainer.data.captions import caption_lines

    out: list[str] = []
    for r in rows:
        out.append(f"{r['path']}:")
        if r["before"] is not None:
            out += [f"  - {ln}" for ln in caption_lines(r["before"]) or [""]]
        out += [f"  + {ln}" for ln in caption_lines(r["after"]) or [""]]
    return "\n".join(out)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """(headers, values) of dict rows, for printing or a Dataframe; lists become ``"; "``-joined text."""
    if columns is None:
        columns = list(rows[0]) if rows else []
    values = [[("; ".join(map(str, r.get(c))) if isinstance(r.get(c), list) else r.get(c)) for c in columns]
              for r in rows]
    return columns, values


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None, width: int = 60) -> str:
    """Plain-text table for the terminal (cells cut at ``width`` characters)."""
    headers, values = table(rows, columns)
    if not headers:
        return "(nothing)"
    cells = [[("" if v is None else str(v))[:width] for v in row] for row in values]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(out)
