"""Training views of a Stable Diffusion checkpoint: diffusers/transformers modules around the host's tensors.

Public API:

- :func:`detect_architecture` — ``"sd1"`` / ``"sd2"`` / ``"sdxl"`` from checkpoint keys.
- :func:`infer_configs` — U-Net, VAE and text encoder configs from tensor shapes.
- :func:`build_views` — frozen modules sharing storage with the given tensors, plus a report.
- :func:`noise_scheduler_config` — the LDM noise schedule as a diffusers scheduler config.
- :func:`checkpoint_shapes` — every checkpoint key and shape a set of configs implies.
- :func:`checkpoint_key_from_live_name` — drop A1111's ``wrapped`` path segments.

Families (one module each: ``sd1.py``, ``sdxl.py``) are registered in :data:`FAMILIES`.
"""

from __future__ import annotations

from .base import ModelConfigs, ModelViews, ViewReport
from .detect import detect_architecture
from .families import FAMILIES, family_for
from .keys import checkpoint_key_from_live_name
from .layout import checkpoint_shapes
from .schedule import noise_scheduler_config
from .views import build_views, infer_configs

__all__ = [
    "FAMILIES",
    "ModelConfigs",
    "ModelViews",
    "ViewReport",
    "build_views",
    "checkpoint_key_from_live_name",
    "checkpoint_shapes",
    "detect_architecture",
    "family_for",
    "infer_configs",
    "noise_scheduler_config",
]
