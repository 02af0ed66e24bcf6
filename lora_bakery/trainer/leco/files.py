"""Output names and the metadata written into every slider file.

Names: ``{name}-{step:06d}.safetensors`` every ``saving.save_every`` steps (not for the last step),
``{name}.safetensors`` at the end, ``{name}-interrupted.safetensors`` when stopped, the resumable
state in ``{name}-state/`` and preview grids in ``preview/{name}-{step:06d}.png``.

Metadata: kohya's ``ss_*`` keys as sd-scripts writes them for a U-Net-only LoRA (network module,
dim, alpha, base model version, model name/hash, lr, optimizer, steps, seed), the prompts in
``ss_training_comment`` (one line per entry), the whole LECO config as JSON under
``bakery_leco_config``, and the ``modelspec.*`` keys (sai model spec 1.0).
"""

from __future__ import annotations

import datetime
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from .config import LecoConfig

_SPEC_ARCH = {"sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-512", "sdxl": "stable-diffusion-xl-v1-base"}


def step_file(output_dir: Path, name: str, step: int) -> Path:
    return output_dir / f"{name}-{step:06d}.safetensors"


def final_file(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}.safetensors"


def interrupted_file(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}-interrupted.safetensors"


def state_dir(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}-state"


def preview_file(output_dir: Path, name: str, step: int) -> Path:
    return output_dir / "preview" / f"{name}-{step:06d}.png"


def save_steps(start: int, total: int, every: int) -> list[int]:
    """Steps after which a numbered file is written (never the last: it gets the final name)."""
    if not every:
        return []
    return [s for s in range(every, total, every) if s > start]


def planned_files(output_dir: Path, name: str, start: int, total: int, every: int) -> list[Path]:
    """Every file the run will write, to refuse overwriting before training starts."""
    return [step_file(output_dir, name, s) for s in save_steps(start, total, every)] + [final_file(output_dir, name)]


def _version() -> str:
    try:
        from lora_bakery import __version__

        return str(__version__)
    except Exception:  # pragma: no cover - the package always has a version
        return "unknown"


def model_metadata(parts: Any, v_pred: bool) -> dict[str, str]:
    """``ss_v2``, ``ss_base_model_version`` and the host checkpoint's name and hashes.

    The full-file sha256 is computed only when the host did not give it (it reads the whole file).
    """
    from ..saving import base_model_metadata

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


def run_metadata(config: LecoConfig, parts: Any, network: Any, optimizer: Any, resolution: int) -> dict[str, str]:
    """The metadata shared by every file of one run (:func:`for_save` adds the per-file keys).

    Args:
        config (`LecoConfig`): the run's config.
        parts (`ModelParts`-like): the host's model.
        network (`Network`): the slider (``metadata()`` gives ``ss_network_*``).
        optimizer (`torch.optim.Optimizer`): for ``ss_optimizer``.
        resolution (`int`): the first entry's resolution.

    Returns:
        `dict[str, str]`
    """
    t = config.training
    v_pred = getattr(parts, "prediction", "eps") == "v"
    cls = type(optimizer)
    started = time.time()
    meta: dict[str, str] = {
        "ss_training_comment": config.summary(),
        "ss_output_name": config.saving.output_name,
        "ss_learning_rate": str(t.lr),
        "ss_unet_lr": str(t.lr),
        "ss_text_encoder_lr": "None",
        "ss_network_train_unet_only": "True",
        "ss_max_train_steps": str(t.steps),
        "ss_num_epochs": "1",
        "ss_num_train_images": "0",
        "ss_num_reg_images": "0",
        "ss_batch_size_per_device": str(max(e.batch_size for e in config.prompts) if config.prompts else 1),
        "ss_optimizer": f"{cls.__module__}.{cls.__name__}",
        "ss_lr_scheduler": t.scheduler,
        "ss_mixed_precision": {"bf16": "bf16", "fp32": "no"}.get(t.precision, t.precision),
        "ss_seed": str(t.seed),
        "ss_clip_skip": str(getattr(parts, "clip_skip", 1) or 1),
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_max_denoising_steps": str(t.max_denoising_steps),
        "ss_session_id": str(random.Random().randint(0, 2**32)),
        "ss_training_started_at": str(started),
        "ss_sd_scripts_commit_hash": f"lora-bakery-{_version()}",
        "bakery_leco_config": json.dumps(config.to_dict(), ensure_ascii=False, sort_keys=True),
    }
    meta.update(model_metadata(parts, v_pred))
    meta.update(network.metadata())
    arch = parts.architecture
    meta.update({
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": f"{_SPEC_ARCH.get(arch, arch)}/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models" if arch == "sdxl" else "diffusers",
        "modelspec.implementation_version": f"lora-bakery/{_version()}",
        "modelspec.title": config.saving.output_name,
        "modelspec.resolution": f"{resolution}x{resolution}",
        "modelspec.prediction_type": "v" if v_pred else "epsilon",
        "modelspec.date": datetime.datetime.fromtimestamp(started).isoformat(timespec="seconds"),
        "modelspec.description": config.summary(),
    })
    return meta


def for_save(base: dict[str, str], step: int) -> dict[str, str]:
    """One file's metadata: the run's plus ``ss_steps``, ``ss_epoch`` and ``ss_training_finished_at``."""
    return {**base, "ss_steps": str(step), "ss_epoch": "1", "ss_training_finished_at": str(time.time())}


def save_png(image: Any, path: Path) -> Path:
    """Write a PNG atomically (temporary sibling + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


__all__ = [
    "final_file",
    "for_save",
    "interrupted_file",
    "model_metadata",
    "planned_files",
    "preview_file",
    "run_metadata",
    "save_png",
    "save_steps",
    "state_dir",
    "step_file",
]
