"""``train()``: bake a LoRA on the host's own model, headless.

The Bake tab, ``bakery train CONFIG.toml``, ``python -m lora_bakery.trainer train`` and
``accelerate launch -m lora_bakery.trainer train`` all call this one function. It needs no webui
and no gradio: the caller passes the host's model (``ModelParts``: weights in checkpoint layout,
tokenizers, architecture, prediction), a progress object, and optionally a sampler for images.

The loop (:mod:`lora_bakery.trainer.loop`) builds zero-copy views over the host's weights, caches
latents, wraps the views with the configured adapters, and trains them; afterwards the adapters
are removed and the host's model is bitwise what it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .config import TrainConfig
from .loop.prompts import load_sample_prompts, parse_prompt_line, parse_prompts
from .loop.types import (
    ProgressLike,
    QuietProgress,
    SamplePrompt,
    StepInfo,
    TrainCallbacks,
    TrainError,
    TrainResult,
)

Sampler = Callable[[list[SamplePrompt], Any], list[Any]]


def train(
    config: TrainConfig,
    parts: Any,
    progress: ProgressLike | None = None,
    sampler: Sampler | None = None,
    *,
    callbacks: TrainCallbacks | None = None,
    views: Any = None,
) -> TrainResult:
    """Train the network ``config`` describes on the host's model and write kohya-compatible files.

    Args:
        config (`TrainConfig`): the whole run (data, network, optimizer, loop, saving, samples).
        parts (`ModelParts`): the host's model: ``architecture``, ``prediction``, ``parameters``
            (checkpoint keys → the host's own tensors), ``tokenizers``, and for the metadata
            ``checkpoint_name``/``checkpoint_path``/``checkpoint_hash``/``legacy_hash``/``clip_skip``.
        progress (`Progress`, *optional*): ``begin``/``step``/``preview``/``interrupted``/``end``
            (and optionally ``log(text)``); when ``interrupted`` turns true the run saves
            ``name-interrupted.safetensors`` plus a resumable ``name-state/`` and returns.
        sampler (`Callable`, *optional*): ``sampler(prompts, lora_file) -> images`` for sample images
            every ``sampling.every_n_epochs`` (see :mod:`lora_bakery.trainer.loop.sampling`).
        callbacks (`TrainCallbacks`, *optional*): ``on_step_end`` / ``on_epoch_end`` hooks.
        views (`ModelViews`, *optional*): views over ``parts.parameters`` the caller already has
            (the standalone host generates from its own; passing them lets a
            ``uses_training_views`` sampler see the adapters). Built here when omitted.

    Returns:
        `TrainResult`: status, files, losses, plot, samples and notes.

    Raises:
        TrainError: a problem the user can fix: no images, bad settings, NaN loss (the last good
            epoch file is kept and named), out of memory (with advice), unusable resume state.
            ``error.result`` holds what was done before.
    """
    from .loop.run import Run

    return Run(config, parts, progress or QuietProgress(), sampler, callbacks, views)()


__all__ = [
    "ProgressLike",
    "SamplePrompt",
    "Sampler",
    "StepInfo",
    "TrainCallbacks",
    "TrainError",
    "TrainResult",
    "load_sample_prompts",
    "parse_prompt_line",
    "parse_prompts",
    "train",
]
