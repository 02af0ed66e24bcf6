"""Component builders shared by the families: U-Net, VAE and CLIP text encoders.

diffusers and transformers are imported inside the builders so that importing
``lora_bakery.trainer.models`` stays cheap (the webui imports every extension at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .base import Component
from .keys import KeyEntry
from .ldm_keys import UNET_PREFIX, VAE_PREFIX, unet_entry, vae_entry


def unet_component(config: dict[str, Any], prefix: str = UNET_PREFIX) -> Component:
    """The ``UNet2DConditionModel`` component for an LDM/SGM U-Net stored under ``prefix``."""

    def build() -> torch.nn.Module:
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel(**config)

    return Component("unet", build, lambda name: unet_entry(name, config, prefix))


def vae_component(config: dict[str, Any], prefix: str = VAE_PREFIX) -> Component:
    """The ``AutoencoderKL`` component for an LDM VAE stored under ``prefix``."""

    def build() -> torch.nn.Module:
        from diffusers import AutoencoderKL

        return AutoencoderKL(**config)

    return Component("vae", build, lambda name: vae_entry(name, config, prefix))


def clip_component(
    name: str, config: dict[str, Any], entry: Callable[[str], KeyEntry], projection: bool = False
) -> Component:
    """A transformers CLIP text encoder component.

    Args:
        name (`str`): ``"text_encoder"`` or ``"text_encoder_2"``.
        config (`dict`): ``CLIPTextConfig`` kwargs.
        entry (`Callable[[str], KeyEntry]`): the family's name mapper (HF or open_clip layout).
        projection (`bool`, defaults to `False`): build ``CLIPTextModelWithProjection`` (SDXL's pooled output).

    Returns:
        `Component`: the component.
    """

    def build() -> torch.nn.Module:
        from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

        cls = CLIPTextModelWithProjection if projection else CLIPTextModel
        return cls(CLIPTextConfig(**config))

    return Component(name, build, entry)
