"""Diffusers configs for an LDM/SGM U-Net and VAE, read from tensor shapes alone.

Shapes give channels, level count, res blocks per level, which levels attend, transformer depth,
context width and projection type. What they cannot give (head count, norm groups, scaling factor)
comes from the family rules passed in by ``sd1.py`` / ``sdxl.py``. Only ``.shape`` is read, so meta
tensors work: a full-size config can be inferred without allocating a byte of weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from .ldm_keys import UNET_PREFIX, VAE_PREFIX


def _indices(parameters: Mapping[str, torch.Tensor], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m[1]) for key in parameters if (m := regex.match(key))})


def _depth(parameters: Mapping[str, torch.Tensor], block: str) -> int:
    """How many BasicTransformerBlocks the SpatialTransformer at ``block`` (e.g. ``input_blocks.4.1``) has."""
    found = _indices(parameters, re.escape(block) + r"\.transformer_blocks\.(\d+)\.")
    return len(found)


def unet_levels(parameters: Mapping[str, torch.Tensor], prefix: str = UNET_PREFIX) -> dict[str, Any]:
    """The U-Net's structure as shapes show it.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors (only ``.shape`` is read).
        prefix (`str`, defaults to ``"model.diffusion_model."``): U-Net key prefix.

    Returns:
        `dict`: ``channels`` (per level), ``layers_per_block``, ``down_depth`` / ``up_depth`` (transformer
        blocks per level, 0 where a level has no attention), ``mid_depth``, ``context_dim``, ``linear_proj``,
        ``in_channels``, ``out_channels``, ``time_embed_dim``, ``adm_in_channels`` (or ``None``).
    """
    p = prefix
    inputs = _indices(parameters, re.escape(p) + r"input_blocks\.(\d+)\.")
    if not inputs:
        raise ValueError("no U-Net input blocks found under " + p)
    downsamples = _indices(parameters, re.escape(p) + r"input_blocks\.(\d+)\.0\.op\.weight")
    step = downsamples[0] if downsamples else len(inputs)  # ldm blocks per level (+ conv_in offset)
    layers = step - 1
    levels = len(inputs) // step
    channels, down_depth, up_depth = [], [], []
    for level in range(levels):
        first = level * step + 1
        channels.append(parameters[f"{p}input_blocks.{first}.0.out_layers.3.weight"].shape[0])
        down_depth.append(_depth(parameters, f"{p}input_blocks.{first}.1"))
    for level in range(levels):  # output_blocks run from the deepest level back up
        up_depth.append(_depth(parameters, f"{p}output_blocks.{level * step}.1"))
    mid_depth = _depth(parameters, f"{p}middle_block.1")
    context_keys = [k for k in parameters if k.startswith(p) and k.endswith(".attn2.to_k.weight")]
    proj = [k for k in parameters if k.startswith(p) and k.endswith(".proj_in.weight")]
    time_embed = parameters[p + "time_embed.0.weight"]
    adm = parameters.get(p + "label_emb.0.0.weight")
    return {
        "channels": channels,
        "layers_per_block": layers,
        "down_depth": down_depth,
        "up_depth": up_depth,
        "mid_depth": mid_depth,
        "context_dim": parameters[context_keys[0]].shape[1] if context_keys else None,
        "linear_proj": bool(proj) and parameters[proj[0]].ndim == 2,
        "in_channels": parameters[p + "input_blocks.0.0.weight"].shape[1],
        "out_channels": parameters[p + "out.2.weight"].shape[0],
        "model_channels": time_embed.shape[1],
        "time_embed_dim": time_embed.shape[0],
        "adm_in_channels": adm.shape[1] if adm is not None else None,
    }


def unet_config(levels: Mapping[str, Any], heads: list[int], sample_size: int) -> dict[str, Any]:
    """A diffusers ``UNet2DConditionModel`` config from :func:`unet_levels` and the family's head rule.

    Args:
        levels (`Mapping`): the output of :func:`unet_levels`.
        heads (`list[int]`): attention heads per level (SD1: 8 everywhere; SD2/SDXL: channels // 64).
        sample_size (`int`): latent size the model was trained at (64 for SD1, 128 for SDXL).

    Returns:
        `dict`: kwargs for ``UNet2DConditionModel`` (SDXL's added-conditioning keys are set by the caller).
    """
    attends = [d > 0 for d in levels["down_depth"]]
    up_attends = [d > 0 for d in levels["up_depth"]]
    # diffusers ignores the depth of levels without attention; 1 there matches the published configs.
    down_depth = [d if d > 0 else 1 for d in levels["down_depth"]]
    up_depth = [d if d > 0 else 1 for d in levels["up_depth"]]
    config: dict[str, Any] = {
        "sample_size": sample_size,
        "in_channels": levels["in_channels"],
        "out_channels": levels["out_channels"],
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attends],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in up_attends],
        "block_out_channels": list(levels["channels"]),
        "layers_per_block": levels["layers_per_block"],
        "cross_attention_dim": levels["context_dim"],
        "attention_head_dim": heads[0] if len(set(heads)) == 1 else list(heads),
        "use_linear_projection": levels["linear_proj"],
        "transformer_layers_per_block": down_depth[0] if len(set(down_depth)) == 1 else down_depth,
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
    }
    if up_depth != down_depth[::-1]:
        config["reverse_transformer_layers_per_block"] = up_depth
    if levels["mid_depth"] and levels["mid_depth"] != down_depth[-1]:
        raise NotImplementedError(
            f"middle block depth {levels['mid_depth']} differs from the last level's {down_depth[-1]}; "
            "diffusers' UNet2DConditionModel cannot express that"
        )
    if levels["time_embed_dim"] != 4 * levels["channels"][0]:
        config["time_embedding_dim"] = levels["time_embed_dim"]
    return config


def vae_config(
    parameters: Mapping[str, torch.Tensor], scaling_factor: float, sample_size: int, prefix: str = VAE_PREFIX
) -> dict[str, Any]:
    """A diffusers ``AutoencoderKL`` config from the LDM VAE's shapes.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors (only ``.shape`` is read).
        scaling_factor (`float`): latent scale (SD1 0.18215, SDXL 0.13025); shapes cannot tell it.
        sample_size (`int`): image size in pixels the VAE config advertises.
        prefix (`str`, defaults to ``"first_stage_model."``): VAE key prefix.

    Returns:
        `dict`: kwargs for ``AutoencoderKL``.
    """
    p = prefix
    levels = _indices(parameters, re.escape(p) + r"encoder\.down\.(\d+)\.")
    if not levels:
        raise ValueError("no VAE encoder blocks found under " + p)
    channels = [parameters[f"{p}encoder.down.{i}.block.0.conv1.weight"].shape[0] for i in levels]
    res_blocks = _indices(parameters, re.escape(p) + r"encoder\.down\.0\.block\.(\d+)\.")
    return {
        "in_channels": parameters[p + "encoder.conv_in.weight"].shape[1],
        "out_channels": parameters[p + "decoder.conv_out.weight"].shape[0],
        "down_block_types": ["DownEncoderBlock2D"] * len(levels),
        "up_block_types": ["UpDecoderBlock2D"] * len(levels),
        "block_out_channels": channels,
        "layers_per_block": len(res_blocks),
        "latent_channels": parameters[p + "post_quant_conv.weight"].shape[0],
        "norm_num_groups": 32,
        "sample_size": sample_size,
        "scaling_factor": scaling_factor,
    }
