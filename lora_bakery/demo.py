"""``bakery demo``: run every pipeline stage on the embedded tiny model and write a summary.

A stage is a function ``stage(ctx) -> dict`` registered in ``STAGES`` (name -> "module:function").
It writes its files under ``ctx.out / name`` and returns ``{"outputs": [paths], ...figures}``.
Stages run in order and share ``ctx.artifacts`` (the dataset stage's folder feeds bake, bake's
LoRA feeds compare...). A failing stage is recorded with its message and the rest still run, so
the summary shows everything that works.
"""

from __future__ import annotations

import importlib
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_bakery.trainer.atomic import write_text_atomic

# Later features append their stage here, in pipeline order (dataset, reg, bake, leco, compare).
STAGES: dict[str, str] = {
    "dataset": "lora_bakery.demo_dataset:run",
    "reg": "lora_bakery.demo_reg:run",
    "bake": "lora_bakery.demo_bake:run",
    "leco": "lora_bakery.demo_leco:run",
    "compare": "lora_bakery.demo_compare:run",
    "generate": "lora_bakery.demo_stages:generate",
}


@dataclass
class DemoContext:
    """What a stage gets: the output root, the shared host, and what earlier stages produced."""

    out: Path
    host: Any
    artifacts: dict[str, Any] = field(default_factory=dict)

    def stage_dir(self, name: str) -> Path:
        path = self.out / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def _resolve(spec: str) -> Callable[[DemoContext], dict[str, Any]]:
    module, func = spec.split(":")
    return getattr(importlib.import_module(module), func)


def run_demo(out: Path, host: Any, only: list[str] | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the stages and write ``out/summary.json``.

    Returns:
        `dict`: the summary, ``{"stages": {name: {"status", "seconds", "outputs", ...}}}``.

    Raises:
        ValueError: ``only`` names a stage that does not exist (the message lists the stages).
    """
    unknown = [name for name in only or [] if name not in STAGES]
    if unknown:
        raise ValueError(f"unknown demo stage(s) {', '.join(unknown)}; the stages are {', '.join(STAGES)}")
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, host=host)
    summary: dict[str, Any] = {"stages": {}}
    for name, spec in STAGES.items():
        if only and name not in only:
            continue
        log(f"[demo] {name} ...")
        start = time.perf_counter()
        try:
            result = dict(_resolve(spec)(ctx) or {})
            outputs = [_relative(p, out) for p in result.pop("outputs", [])]
            entry = {"status": "ok", "seconds": round(time.perf_counter() - start, 3), "outputs": outputs, **result}
        except Exception as exc:
            traceback.print_exc()
            entry = {"status": "failed", "seconds": round(time.perf_counter() - start, 3), "outputs": [],
                     "error": f"{type(exc).__name__}: {exc}"}
        summary["stages"][name] = entry
        log(f"[demo] {name}: {entry['status']} in {entry['seconds']} s")
        _write_json(out / "summary.json", summary)
    _write_json(out / "summary.json", summary)
    return summary


def _relative(path: str | Path, root: Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))
