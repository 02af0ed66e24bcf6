"""LECO / concept sliders: a LoRA trained from prompts alone, dialled with its weight (−2 … +2).

Public API:

- :class:`LecoConfig` (``from_dict``/``from_toml``/``load``/``save``/``to_toml``, ``expanded_prompts``,
  ``check_ready``, ``warnings``) with :class:`PromptEntry`, :class:`AnchorEntry` and the sections;
  :data:`PRESETS` / :func:`preset` for the UI.
- :func:`train_leco` -> :class:`LecoResult` (raises :class:`LecoError`); :class:`LecoCallbacks`.
- :class:`PreviewRequest` (what a previewer gets), :func:`image_difference`, :func:`make_grid`.
- :class:`SliderStep` (the step itself, for tests and the benchmark), :func:`build_slider_network`,
  :class:`PromptCache`.

No gradio, no webui, no ``lora_bakery.extension`` here (tests/test_boundaries.py).
"""

from __future__ import annotations

from .config import (
    ACTIONS,
    FP16_REFUSED,
    MODULE_SETS,
    PRESETS,
    AnchorEntry,
    LecoConfig,
    LecoNetwork,
    LecoPreview,
    LecoSaving,
    LecoTraining,
    PromptEntry,
    preset,
)
from .embeds import PromptCache
from .modules import build_slider_network, select_targets
from .preview import PreviewRequest, done_hint, image_difference, make_grid
from .run import LecoCallbacks, LecoError, LecoResult, LecoRun, train_leco
from .step import SliderStep, StepOutput, StepPlan

__all__ = [
    "ACTIONS",
    "FP16_REFUSED",
    "MODULE_SETS",
    "PRESETS",
    "AnchorEntry",
    "LecoCallbacks",
    "LecoConfig",
    "LecoError",
    "LecoNetwork",
    "LecoPreview",
    "LecoResult",
    "LecoRun",
    "LecoSaving",
    "LecoTraining",
    "PreviewRequest",
    "PromptCache",
    "PromptEntry",
    "SliderStep",
    "StepOutput",
    "StepPlan",
    "build_slider_network",
    "done_hint",
    "image_difference",
    "make_grid",
    "preset",
    "select_targets",
    "train_leco",
]
