"""Sample images during training through the caller's ``sampler``.

A sampler is ``sampler(prompts: list[SamplePrompt], lora_file: Path | None) -> list[PIL.Image]``.
The usual one (A1111, the Bake tab) renders through ``Host.generate`` with the LoRA file, so the
samples show exactly what the host's own LoRA loader will make of it; for that the adapters are
taken out of the host's layers while it runs. A sampler with ``uses_training_views = True`` (the
standalone host, which generates from the training views themselves) is called with the adapters
in place instead, and gets ``lora_file=None`` when the epoch wrote none.

Sampling never changes the training: random states are restored afterwards, and a failing sampler
is reported once and switched off, it never stops the run.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import save_png_atomic
from . import outputs


def make_samples(run: Any, epoch: int, lora_file: Path | None) -> list[Path]:
    """Render ``run.prompts`` for ``epoch`` and save them under ``output_dir/sample/``.

    Args:
        run (`Run`): the running training.
        epoch (`int`): the epoch just finished.
        lora_file (`Path`, *optional*): the file this epoch wrote, if any.

    Returns:
        `list[Path]`: the PNGs written.
    """
    live = bool(getattr(run.sampler, "uses_training_views", False))
    temp = None
    if lora_file is None and not live:
        temp = run.output_dir / f".{run.name}-sample.safetensors"
        sv = run.config.saving
        lora_file = outputs.save_lora(temp, run.network, run.meta.for_save(epoch, run.position.step), sv.save_precision, True)
    modules = [run.views.unet, *run.views.text_encoders]
    modes = [(m, m.training) for m in modules]
    rng = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    images: list[Any] = []
    try:
        if not live:
            run.network.remove()
        run.network.eval()
        for m in modules:
            m.eval()
        lend = run.placement.lend() if run.placement is not None else contextlib.nullcontext()
        try:
            with lend:  # medvram / fp8: the host gets its own placement back while it renders
                images = list(run.sampler(list(run.prompts), lora_file) or [])
        finally:
            if run.placement is not None and getattr(run, "graphs", None) is not None:
                run.graphs.close()  # the U-Net's weights were placed anew: captured graphs hold old addresses
    except Exception as exc:  # a sampler problem must not end the training
        run.note(f"sample images switched off: {type(exc).__name__}: {exc}")
        run.prompts = []
    finally:
        for m, training in modes:
            m.train(training)
        run.network.train()
        if not live:
            run.network.apply()
        torch.set_rng_state(rng[0])
        random.setstate(rng[1])
        np.random.set_state(rng[2])
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
        if temp is not None:
            temp.unlink(missing_ok=True)
    written = []
    for i, (prompt, image) in enumerate(zip(run.prompts, images)):
        path = run.output_dir / "sample" / f"{run.name}_e{epoch:06d}_{i:02d}_{prompt.seed}.png"
        save_png_atomic(image, path)
        run.progress.preview(image)
        written.append(path)
    run.result.samples.extend(written)
    return written
