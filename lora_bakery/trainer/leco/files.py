"""Output names and the metadata written into every slider file.

Names: ``{name}-{step:06d}.safetensors`` every ``saving.save_every`` steps (not for the last step),
``{name}.safetensors`` at the end, ``{name}-interrupted.safetensors`` when stopped, the resumable
state in ``{name}-state/`` (on an interrupt, or at every save with ``saving.save_state``; its tensor
files are not ``.safetensors``, so no webui lists them as LoRAs) and preview grids in
``preview/{name}-{step:06d}.png``.

Metadata: kohya's ``ss_*`` keys as sd-scripts writes them for a U-Net-only LoRA (network module,
dim, alpha, base model version, model name/hash, lr, optimizer, steps, seed), the prompts in
``ss_training_comment`` (one line per entry), the whole LECO config as JSON under
``bakery_leco_config``, and the ``modelspec.*`` keys (sai model spec 1.0).
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from ..atomic import save_png_atomic
from ..saving.run_files import (
    bakery_version,
    clip_skip_of,
    final_file,
    host_model_metadata,
    interrupted_file,
    modelspec_metadata,
    numbered_file,
    state_dir,
)
from .config import LecoConfig

step_file = numbered_file


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


model_metadata = host_model_metadata


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
        "ss_clip_skip": str(clip_skip_of(None, getattr(parts, "clip_skip", None), parts.architecture)),
        "ss_resolution": f"({resolution}, {resolution})",
        "ss_max_denoising_steps": str(t.max_denoising_steps),
        "ss_session_id": str(random.Random().randint(0, 2**32)),
        "ss_training_started_at": str(started),
        "ss_sd_scripts_commit_hash": f"lora-bakery-{bakery_version()}",
        "bakery_leco_config": json.dumps(config.to_dict(), ensure_ascii=False, sort_keys=True),
    }
    meta.update(model_metadata(parts, v_pred))
    meta.update(network.metadata())
    arch = parts.architecture
    meta.update(modelspec_metadata(arch, title=config.saving.output_name, resolution=(resolution, resolution),
                                   v_pred=v_pred, started=started))
    meta["modelspec.description"] = config.summary()
    if meta["ss_clip_skip"] != "None":
        meta["modelspec.encoder_layer"] = meta["ss_clip_skip"]
    return meta


def for_save(base: dict[str, str], step: int) -> dict[str, str]:
    """One file's metadata: the run's plus ``ss_steps``, ``ss_epoch`` and ``ss_training_finished_at``."""
    return {**base, "ss_steps": str(step), "ss_epoch": "1", "ss_training_finished_at": str(time.time())}


save_png = save_png_atomic


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
