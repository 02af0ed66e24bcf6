"""Diffusers <-> LDM/SGM names for the U-Net and the VAE (shared by SD1, SD2 and SDXL).

SD1 (ldm) and SDXL (sgm) U-Nets use the same ``openaimodel`` layout: ``input_blocks`` (conv_in, then per
level ``layers_per_block`` pairs of [ResBlock, SpatialTransformer] and a Downsample), ``middle_block`` and
``output_blocks`` (per level ``layers_per_block + 1`` pairs, then an Upsample). The index arithmetic
below is the one in diffusers' ``scripts/convert_diffusers_to_original_stable_diffusion.py``
(``unet_conversion_map_layer``), generalised from 4 levels x 2 layers to any level count and depth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .keys import SAME, SQUEEZE, KeyEntry, replace_prefix

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."

_UNET_TOP = [
    ("time_embedding.linear_1.", "time_embed.0."),
    ("time_embedding.linear_2.", "time_embed.2."),
    ("add_embedding.linear_1.", "label_emb.0.0."),
    ("add_embedding.linear_2.", "label_emb.0.2."),
    ("conv_in.", "input_blocks.0.0."),
    ("conv_norm_out.", "out.0."),
    ("conv_out.", "out.2."),
]
# ResBlock inside the U-Net: diffusers ResnetBlock2D name -> ldm ResBlock name.
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}

_DOWN = re.compile(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)")
_DOWNSAMPLE = re.compile(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)")
_UP = re.compile(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)")
_UPSAMPLE = re.compile(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)")
_MID = re.compile(r"mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def _resnet(rest: str) -> str:
    head, _, tail = rest.partition(".")
    return f"{_UNET_RESNET.get(head, head)}.{tail}"


def _block(kind: str, rest: str) -> str:
    """``0.<resnet>`` for a ResBlock, ``1.<same names>`` for a SpatialTransformer (names are identical)."""
    return f"0.{_resnet(rest)}" if kind == "resnets" else f"1.{rest}"


def unet_ldm_name(name: str, config: Mapping[str, Any]) -> str:
    """The LDM/SGM name (without ``model.diffusion_model.``) of a diffusers U-Net parameter.

    Args:
        name (`str`): e.g. ``down_blocks.1.attentions.0.proj_in.weight``.
        config (`Mapping`): the diffusers ``UNet2DConditionModel`` config (``layers_per_block``, ``up_block_types``).

    Returns:
        `str`: e.g. ``input_blocks.4.1.proj_in.weight``.
    """
    step = config["layers_per_block"] + 1  # ldm blocks per level (down: resnets + downsample)
    m = _DOWN.fullmatch(name)
    if m:
        level, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"input_blocks.{level * step + layer + 1}.{_block(kind, rest)}"
    m = _DOWNSAMPLE.fullmatch(name)
    if m:
        return f"input_blocks.{(int(m[1]) + 1) * step}.0.op.{m[2]}"
    m = _UP.fullmatch(name)
    if m:
        level, kind, layer, rest = int(m[1]), m[2], int(m[3]), m[4]
        return f"output_blocks.{level * step + layer}.{_block(kind, rest)}"
    m = _UPSAMPLE.fullmatch(name)
    if m:
        level = int(m[1])
        # The Upsample follows the ResBlock (index 1) or the ResBlock + SpatialTransformer (index 2).
        sub = 2 if "CrossAttn" in config["up_block_types"][level] else 1
        return f"output_blocks.{level * step + step - 1}.{sub}.conv.{m[2]}"
    m = _MID.fullmatch(name)
    if m:
        kind, index, rest = m[1], int(m[2]), m[3]
        if kind == "resnets":
            return f"middle_block.{2 * index}.{_resnet(rest)}"
        return f"middle_block.{2 * index + 1}.{rest}"
    renamed = replace_prefix(name, _UNET_TOP)
    if renamed == name:
        raise KeyError(f"no LDM name for U-Net parameter {name!r}")
    return renamed


def unet_entry(name: str, config: Mapping[str, Any], prefix: str = UNET_PREFIX) -> KeyEntry:
    """The :class:`KeyEntry` of a diffusers U-Net parameter (the U-Net has no layout changes)."""
    return KeyEntry(name, prefix + unet_ldm_name(name, config))


_VAE_TOP = [
    ("encoder.conv_norm_out.", "encoder.norm_out."),
    ("decoder.conv_norm_out.", "decoder.norm_out."),
]
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
_VAE_BLOCK = re.compile(
    r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.+)"
)
_VAE_MID = re.compile(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.+)")


def vae_ldm_name(name: str, config: Mapping[str, Any]) -> str:
    """The LDM name (without ``first_stage_model.``) of a diffusers ``AutoencoderKL`` parameter.

    Args:
        name (`str`): e.g. ``decoder.up_blocks.0.resnets.1.conv1.weight``.
        config (`Mapping`): the diffusers ``AutoencoderKL`` config (``up_block_types``).

    Returns:
        `str`: e.g. ``decoder.up.3.block.1.conv1.weight`` (the LDM decoder counts levels upwards).
    """
    m = _VAE_BLOCK.fullmatch(name)
    if m:
        part, direction, level, kind, index, rest = m[1], m[2], int(m[3]), m[4], int(m[5]), m[6]
        if direction == "up":
            level = len(config["up_block_types"]) - 1 - level
        if kind == "resnets":
            rest = rest.replace("conv_shortcut.", "nin_shortcut.")
            return f"{part}.{direction}.{level}.block.{index}.{rest}"
        return f"{part}.{direction}.{level}.{'downsample' if direction == 'down' else 'upsample'}.{rest}"
    m = _VAE_MID.fullmatch(name)
    if m:
        part, kind, index, rest = m[1], m[2], int(m[3]), m[4]
        if kind == "resnets":
            return f"{part}.mid.block_{index + 1}.{rest.replace('conv_shortcut.', 'nin_shortcut.')}"
        module, _, leaf = rest.rpartition(".")
        return f"{part}.mid.attn_{index + 1}.{_VAE_ATTENTION.get(module, module)}.{leaf}"
    return replace_prefix(name, _VAE_TOP)


def vae_entry(name: str, config: Mapping[str, Any], prefix: str = VAE_PREFIX) -> KeyEntry:
    """The :class:`KeyEntry` of a diffusers VAE parameter; attention weights are 1x1 convs in LDM."""
    ldm = vae_ldm_name(name, config)
    is_attention_weight = ".mid.attn_" in ldm and ldm.endswith(".weight") and ".norm." not in ldm
    return KeyEntry(name, prefix + ldm, SQUEEZE if is_attention_weight else SAME)
