"""Compare work as queue jobs, and the grid spec from plain dicts (UI/API/CLI use the same names).

Job functions take the ``JobContext`` first (a Progress: counts, previews, interrupt) and return a
JSON-able summary; the queue keeps it as the job's result.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from .grid import Axis, GridSpec, run_grid

_SPEC_FIELDS = {f.name for f in fields(GridSpec)} - {"x", "y", "z"}


def axis_from_dict(data: dict[str, Any] | None) -> Axis | None:
    """``{"kind": "weight", "values": [0.5, 1], "labels": [...]}`` -> Axis (``None``/empty -> no axis)."""
    if not data or not data.get("kind") or data.get("kind") == "none":
        return None
    return Axis(str(data["kind"]), list(data.get("values") or []), data.get("labels"))


def spec_from_dict(data: dict[str, Any]) -> GridSpec:
    """A GridSpec from a dict of its field names (``x``/``y``/``z`` as axis dicts).

    Raises:
        ValueError: an unknown field (named) or a bad axis.
    """
    unknown = sorted(set(data) - _SPEC_FIELDS - {"x", "y", "z"})
    if unknown:
        raise ValueError(f"unknown grid field(s): {', '.join(unknown)}")
    values = {k: v for k, v in data.items() if k in _SPEC_FIELDS}
    return GridSpec(**values, x=axis_from_dict(data.get("x")), y=axis_from_dict(data.get("y")),
                    z=axis_from_dict(data.get("z")))


def grid_job(ctx: Any, host: Any, spec: GridSpec, out_dir: str | Path) -> dict[str, Any]:
    """Render a grid as a job; returns the files and labels."""
    result = run_grid(host, spec, out_dir, ctx)
    return {"grid": str(result.grid), "grids": [str(g) for g in result.grids], "x": result.x_labels,
            "y": result.y_labels, "z": result.z_labels, "cells": result.cells, "interrupted": result.interrupted}


def effect_job(ctx: Any, host: Any, lora: str, request: Any, out_dir: str | Path, **options: Any) -> dict[str, Any]:
    """Run the image-space block analyzer as a job."""
    from .effect import block_effects

    effect = block_effects(host, lora, request, out_dir, progress=ctx, **options)
    return {"blocks": effect.blocks, "percents": effect.percents,
            "chart": str(effect.chart) if effect.chart else None, "sheet": str(effect.sheet) if effect.sheet else None}


__all__ = ["axis_from_dict", "effect_job", "grid_job", "spec_from_dict"]
