"""Stable Diffusion 1.x: LDM key layout (``model.diffusion_model``, ``first_stage_model``,
``cond_stage_model.transformer`` = OpenAI CLIP ViT-L/14 text model in HF layout)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch

from .base import Component, Family, ModelConfigs
from .clip import hf_clip_config, hf_clip_entry
from .components import clip_component, unet_component, vae_component
from .ldm_config import unet_config, unet_levels, vae_config

ARCHITECTURE = "sd1"
TEXT_ENCODER_PREFIX = "cond_stage_model.transformer."
NUM_HEADS = 8  # v1-inference.yaml: num_heads: 8 at every level (shapes cannot tell heads)
VAE_SCALING_FACTOR = 0.18215


def infer_configs(parameters: Mapping[str, torch.Tensor]) -> ModelConfigs:
    """SD1 configs from tensor shapes plus the SD1 rules (8 heads, quick_gelu CLIP, VAE scale 0.18215).

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors (only ``.shape`` is read).

    Returns:
        `ModelConfigs`: U-Net, VAE and one text encoder config.
    """
    levels = unet_levels(parameters)
    unet = unet_config(levels, [NUM_HEADS] * len(levels["channels"]), sample_size=64)
    vae = vae_config(parameters, VAE_SCALING_FACTOR, sample_size=512)
    text = hf_clip_config(parameters, TEXT_ENCODER_PREFIX, act="quick_gelu")
    if unet["cross_attention_dim"] != text["hidden_size"]:
        raise ValueError(
            f"U-Net context width {unet['cross_attention_dim']} does not match the text encoder's "
            f"{text['hidden_size']}: not an SD1 checkpoint"
        )
    return ModelConfigs(ARCHITECTURE, unet, vae, [text])


def components(configs: ModelConfigs) -> list[Component]:
    """U-Net, VAE and the CLIP-L text encoder, each with its key mapper."""
    return [
        unet_component(configs.unet),
        vae_component(configs.vae),
        clip_component(
            "text_encoder", configs.text_encoders[0], partial(hf_clip_entry, prefix=TEXT_ENCODER_PREFIX)
        ),
    ]


FAMILY = Family(ARCHITECTURE, infer_configs, components)
