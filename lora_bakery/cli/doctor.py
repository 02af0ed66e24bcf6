"""``bakery doctor``: what model is loaded, whether training views share its memory, what works.

This is the first thing to run when something looks wrong: it proves the zero-copy promise on
the user's own checkpoint (``shared parameters: N/N``, extra bytes) and lists every optional
feature with the package versions it found. ``--install masks`` installs the optional masks feature
(and nothing else): the one CLI action that installs it, after printing what it will install.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

from .common import add_model_options, make_host


def add_parser(sub: Any) -> None:
    p = sub.add_parser("doctor", help="check a checkpoint, the training views and the optional features")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--install", choices=["masks"], help="install an optional feature now (masks: "
                   "transparent-background and what it needs that is missing; installed packages keep their versions)")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Gather the doctor report as plain data (the text output is rendered from it)."""
    import torch

    from lora_bakery import __version__

    host = make_host(args, tiny_default=True)  # a check, not a run: the report names the checkpoint it used
    t0 = time.perf_counter()
    parts = host.model()
    t1 = time.perf_counter()
    views = host.views()
    t2 = time.perf_counter()
    report = views.report
    weights = [t for t in parts.parameters.values() if t.is_floating_point()]
    return {
        "version": __version__,
        "checkpoint": str(host.checkpoint),
        "tiny_default": not getattr(args, "ckpt", None) and not getattr(args, "tiny", None),
        "checkpoint_bytes": host.checkpoint.stat().st_size,
        "architecture": parts.architecture,
        "prediction": parts.prediction,
        "tensors": len(parts.parameters),
        "parameter_count": int(sum(t.numel() for t in weights)),
        "dtype": str(weights[0].dtype).replace("torch.", "") if weights else "",
        "tokenizers": [type(t).__name__ for t in parts.tokenizers],
        "views": {
            "total": report.total,
            "shared": report.shared,
            "extra_bytes": report.extra_bytes,
            "buffer_bytes": report.buffer_bytes,
            "copied": list(report.copied),
            "messages": list(report.messages),
        },
        "seconds": {"load": round(t1 - t0, 3), "views": round(t2 - t1, 3)},
        "features": _features(),
        "runtime": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "packages": _versions(["diffusers", "transformers", "peft", "accelerate", "safetensors", "gradio", "onnxruntime"]),
        },
    }


def _features() -> dict[str, dict[str, Any]]:
    try:
        from lora_bakery import deps

        return {name: {"ok": ok, "detail": detail} for name, (ok, detail) in deps.feature_status(verify=True).items()}
    except Exception as exc:  # doctor must still report the model when the feature table is broken
        return {"status": {"ok": False, "detail": f"feature status unavailable: {exc}"}}


def _versions(names: list[str]) -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def render(info: dict[str, Any]) -> str:
    v = info["views"]
    lines = [
        f"LoRA Bakery {info['version']} doctor",
        f"checkpoint: {info['checkpoint']} ({human_bytes(info['checkpoint_bytes'])})"
        + (" — the embedded tiny test model (no --ckpt given: pass --ckpt PATH to check yours)"
           if info.get("tiny_default") else ""),
        f"architecture: {info['architecture']} ({info['prediction']}-prediction)",
        f"parameters: {info['parameter_count']:,} in {info['tensors']} tensors ({info['dtype']})",
        f"tokenizers: {', '.join(info['tokenizers'])}",
        f"shared parameters: {v['shared']}/{v['total']}",
        f"extra bytes for weights: {v['extra_bytes']} ({human_bytes(v['extra_bytes'])})",
        f"extra bytes for buffers: {v['buffer_bytes']} (position ids, not weights)",
        f"copied tensors: {len(v['copied'])}",
        *(f"  note: {m}" for m in v["messages"]),
        f"time: load {info['seconds']['load']} s, views {info['seconds']['views']} s",
        "features:",
        *(f"  {name:<10} {'ok ' if f['ok'] else 'OFF'}  {f['detail']}" for name, f in info["features"].items()),
        "runtime: python {python}, torch {torch}, cuda {cuda}".format(**info["runtime"]),
        "  " + ", ".join(f"{k} {val or '-'}" for k, val in info["runtime"]["packages"].items()),
    ]
    return "\n".join(lines)


def install(feature: str) -> int:
    """``--install FEATURE``: say what will be installed, install it, say whether it works now."""
    from lora_bakery.extension.dataset import masks

    wanted = masks.install_plan()
    print(f"installing the '{feature}' feature: {', '.join(wanted) or 'nothing is missing'} "
          "(installed packages keep their versions)", flush=True)
    ok, detail = masks.install_feature(log=print)
    print(f"{feature}: {'ok' if ok else 'unavailable'} ({detail})")
    return 0 if ok else 1


def run(args: argparse.Namespace) -> int:
    if getattr(args, "install", None):
        return install(args.install)
    info = collect(args)
    print(json.dumps(info, indent=2) if args.json else render(info))
    v = info["views"]
    return 0 if v["shared"] + len(v["copied"]) == v["total"] else 1


if __name__ == "__main__":
    from . import main

    sys.exit(main(["doctor", *sys.argv[1:]]))
