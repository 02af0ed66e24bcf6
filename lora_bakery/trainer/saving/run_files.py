"""What every training run (LoRA bake or LECO slider) names its files and writes about the model.

Names (kohya's): ``{name}-{n:06d}.safetensors`` for a numbered save (epoch or step),
``{name}.safetensors`` at the end, ``{name}-interrupted.safetensors`` when stopped, and the
resumable state in ``{name}-state/``.

Metadata: the host checkpoint's ``ss_*`` keys (:func:`host_model_metadata`) and the ``modelspec.*``
keys of the SAI model spec 1.0 (:func:`modelspec_metadata`).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

from .metadata import base_model_metadata

SDXL_IMPLEMENTATION = "https://github.com/Stability-AI/generative-models"
SPEC_ARCHITECTURES = {"sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-512", "sdxl": "stable-diffusion-xl-v1-base"}


def numbered_file(output_dir: Path, name: str, number: int) -> Path:
    """An epoch's (bake) or step's (LECO) file."""
    return output_dir / f"{name}-{number:06d}.safetensors"


def final_file(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}.safetensors"


def interrupted_file(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}-interrupted.safetensors"


def state_dir(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}-state"


def bakery_version() -> str:
    """The package version written into ``ss_sd_scripts_commit_hash`` and ``modelspec.implementation_version``."""
    try:
        from lora_bakery import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - the package always has a version
        return "unknown"


def host_model_metadata(parts: Any, v_pred: bool) -> dict[str, str]:
    """``ss_v2``, ``ss_base_model_version`` and the host checkpoint's name and hashes.

    The full-file sha256 is computed only when the host did not give it (it reads the whole file).
    """
    path = getattr(parts, "checkpoint_path", None)
    known_hash = getattr(parts, "checkpoint_hash", None)
    out = base_model_metadata(
        parts.architecture, v_pred, path if path and os.path.isfile(path) else None, full_hashes=not known_hash
    )
    if getattr(parts, "checkpoint_name", ""):
        out["ss_sd_model_name"] = parts.checkpoint_name
    if known_hash:
        out["ss_new_sd_model_hash"] = known_hash
    if getattr(parts, "legacy_hash", None):
        out["ss_sd_model_hash"] = parts.legacy_hash
    return out


def clip_skip_of(configured: int | None, host: int | None, architecture: str) -> int | None:
    """The clip skip to train with and record: the config's, else the host's when it skips (SD1/SD2).

    ``None`` means the last layer, which is what 1 means too; kohya records an unset clip skip as
    ``ss_clip_skip = "None"`` with no ``modelspec.encoder_layer``, so a host at 1 stays ``None`` here.
    """
    if configured is not None:
        return configured
    return host if host and host > 1 and architecture != "sdxl" else None


def modelspec_metadata(architecture: str, *, title: str, resolution: tuple[int, int], v_pred: bool,
                       started: float) -> dict[str, str]:
    """The ``modelspec.*`` keys every LoRA file carries (callers add description/author/encoder layer)."""
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{SPEC_ARCHITECTURES.get(architecture, architecture)}/lora",
        "modelspec.implementation": SDXL_IMPLEMENTATION if architecture == "sdxl" else "diffusers",
        "modelspec.implementation_version": f"lora-bakery/{bakery_version()}",
        "modelspec.title": title,
        "modelspec.resolution": f"{resolution[0]}x{resolution[1]}",
        "modelspec.prediction_type": "v" if v_pred else "epsilon",
        "modelspec.date": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
    }
