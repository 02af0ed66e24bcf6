"""Output files of a run: kohya's names, keep-last-N, and the metadata written into every file.

Names (kohya ``train_util``): ``{name}-{epoch:06d}.safetensors`` every ``save_every_n_epochs``
(never for the last epoch), ``{name}.safetensors`` at the end; ``save_last_n_epochs`` K removes the
file of epoch ``e - N·K`` when epoch ``e`` is written. An interrupted run writes
``{name}-interrupted.safetensors``; the resumable state goes to ``{name}-state/``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import TrainConfig, to_ss_metadata
from ..saving.run_files import (
    bakery_version,
    final_file,
    host_model_metadata,
    interrupted_file,  # noqa: F401 - part of this module's API (run.py names files through it)
    modelspec_metadata,
    numbered_file,
    state_dir,  # noqa: F401 - as above
)

epoch_file = numbered_file


def saves_epoch(epoch: int, every: int, epochs: int) -> bool:
    """Whether ``epoch`` gets a numbered file (kohya skips the last epoch: it gets the final name)."""
    return bool(every) and epoch % every == 0 and epoch < epochs


def expired_epoch(epoch: int, every: int, keep_last: int | None) -> int | None:
    """The epoch whose file ``keep_last`` says to delete once ``epoch`` is written (kohya ``e - N·K``)."""
    if not keep_last or not every:
        return None
    old = epoch - every * keep_last
    return old if old > 0 else None


def planned_files(output_dir: Path, name: str, first_epoch: int, epochs: int, every: int) -> list[Path]:
    """Every file this run will write from ``first_epoch`` on (to refuse overwriting before training)."""
    out = [epoch_file(output_dir, name, e) for e in range(first_epoch, epochs + 1) if saves_epoch(e, every, epochs)]
    return out + [final_file(output_dir, name)]


class MetadataBuilder:
    """Builds the ``ss_*`` + ``modelspec.*`` metadata once per run; :meth:`for_save` adds the per-file keys.

    Args:
        config (`TrainConfig`): the run's config.
        parts (`ModelParts`-like): the host's model (architecture, checkpoint name/path/hashes).
        v_pred (`bool`): v-prediction.
        clip_skip (`int`, *optional*): the clip skip used.
        epochs (`int`): epochs of the run.
        total_steps (`int`): optimizer steps of the run.
        dataset_meta (`dict[str, str]`): from ``data.batching.dataset_ss_metadata``.
        network_meta (`dict[str, str]`): from ``Network.metadata()`` (the adapter's own identity wins).
        optimizer (`torch.optim.Optimizer`): for ``ss_optimizer``.
        resolution (`tuple[int, int]`): training resolution (W, H).
    """

    def __init__(
        self,
        config: TrainConfig,
        parts: Any,
        *,
        v_pred: bool,
        clip_skip: int | None,
        epochs: int,
        total_steps: int,
        dataset_meta: Mapping[str, str],
        network_meta: Mapping[str, str],
        optimizer: Any,
        resolution: tuple[int, int],
    ) -> None:
        arch = parts.architecture
        cls = type(optimizer)
        opt_name = f"{cls.__module__}.{cls.__name__}"
        meta = to_ss_metadata(
            config, architecture=arch, v_pred=v_pred, clip_skip=clip_skip, num_epochs=epochs,
            max_train_steps=total_steps, optimizer_name=opt_name,
        )
        meta.update(dataset_meta)
        meta.update(host_model_metadata(parts, v_pred))
        meta.update(network_meta)
        started = time.time()
        meta.update({
            "ss_session_id": str(random.Random().randint(0, 2**32)),
            "ss_training_started_at": str(started),
            "ss_sd_scripts_commit_hash": f"lora-bakery-{bakery_version()}",
            "ss_num_validation_images": "0",
        })
        sv = config.saving
        spec = modelspec_metadata(arch, title=sv.metadata_title or sv.output_name, resolution=resolution,
                                  v_pred=v_pred, started=started)
        if clip_skip:
            spec["modelspec.encoder_layer"] = str(clip_skip)
        if sv.metadata_author:
            spec["modelspec.author"] = sv.metadata_author
        meta.update(spec)
        self.base = {k: str(v) for k, v in meta.items()}

    def for_save(self, epoch: int, step: int) -> dict[str, str]:
        """The metadata of one file: the run's plus ``ss_epoch``, ``ss_steps``, ``ss_training_finished_at``."""
        out = dict(self.base)
        out.update({"ss_epoch": str(epoch), "ss_steps": str(step), "ss_training_finished_at": str(time.time())})
        return out


def save_lora(path: Path, network: Any, metadata: Mapping[str, str], precision: str, overwrite: bool) -> Path:
    """Write one LoRA file (kohya keys, metadata, hashes; atomic)."""
    from ..saving import save_network

    precision = {"float": "fp32"}.get(precision, precision)
    return save_network(path, network.kohya_state_dict(), metadata, precision=precision, overwrite=overwrite)
