"""Stable Diffusion XL (base): SGM key layout.

``model.diffusion_model`` (U-Net with ``label_emb`` for the pooled text + size/crop conditioning),
``first_stage_model`` (VAE), ``conditioner.embedders.0.transformer`` (CLIP ViT-L in HF layout) and
``conditioner.embedders.1.model`` (OpenCLIP ViT-bigG in open_clip layout, with ``text_projection``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import torch

from .base import Component, Family, ModelConfigs
from .clip import hf_clip_config, hf_clip_entry, open_clip_config, open_clip_entry
from .components import clip_component, unet_component, vae_component
from .ldm_config import unet_config, unet_levels, vae_config

ARCHITECTURE = "sdxl"
TEXT_ENCODER_PREFIX = "conditioner.embedders.0.transformer."
TEXT_ENCODER_2_PREFIX = "conditioner.embedders.1.model."
HEAD_DIM = 64  # sd_xl_base.yaml: num_head_channels: 64
# original size (2), crop top-left (2), target size (2): each embedded to addition_time_embed_dim
TIME_IDS = 6
VAE_SCALING_FACTOR = 0.13025


def infer_configs(parameters: Mapping[str, torch.Tensor]) -> ModelConfigs:
    """SDXL configs from tensor shapes plus the SDXL rules (64-wide heads, gelu bigG, VAE scale 0.13025).

    ``adm_in_channels`` = pooled width + 6 x time-embedding width (2816 = 1280 + 6 x 256 for SDXL base),
    so the time-embedding width is read back from the U-Net's ``label_emb`` and bigG's projection.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors (only ``.shape`` is read).

    Returns:
        `ModelConfigs`: U-Net, VAE and two text encoder configs.
    """
    levels = unet_levels(parameters)
    heads = [max(1, channels // HEAD_DIM) for channels in levels["channels"]]
    unet = unet_config(levels, heads, sample_size=128)
    text = hf_clip_config(parameters, TEXT_ENCODER_PREFIX, act="quick_gelu")
    text_2 = open_clip_config(parameters, TEXT_ENCODER_2_PREFIX, act="gelu")
    if unet["cross_attention_dim"] != text["hidden_size"] + text_2["hidden_size"]:
        raise ValueError(
            f"U-Net context width {unet['cross_attention_dim']} is not the sum of the text encoders' "
            f"{text['hidden_size']} + {text_2['hidden_size']}: not an SDXL base checkpoint"
        )
    adm = levels["adm_in_channels"]
    time_dim, rest = divmod((adm or 0) - text_2["projection_dim"], TIME_IDS)
    if adm is None or rest or time_dim <= 0:
        raise ValueError(f"U-Net label_emb input width {adm} does not fit pooled width + 6 x time embeds")
    unet.update(
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=adm,
    )
    vae = vae_config(parameters, VAE_SCALING_FACTOR, sample_size=1024)
    return ModelConfigs(ARCHITECTURE, unet, vae, [text, text_2])


def components(configs: ModelConfigs) -> list[Component]:
    """U-Net, VAE, CLIP-L (HF layout) and OpenCLIP bigG (open_clip layout, with projection)."""
    text, text_2 = configs.text_encoders
    return [
        unet_component(configs.unet),
        vae_component(configs.vae),
        clip_component("text_encoder", text, partial(hf_clip_entry, prefix=TEXT_ENCODER_PREFIX)),
        clip_component(
            "text_encoder_2", text_2, partial(open_clip_entry, prefix=TEXT_ENCODER_2_PREFIX), projection=True
        ),
    ]


FAMILY = Family(ARCHITECTURE, infer_configs, components)
