"""CLIP text encoders: checkpoint names and configs, for the HF layout and the open_clip layout.

SD1 and SDXL's first encoder are stored as transformers ``CLIPTextModel`` state dicts
(``<prefix>text_model.*``), so only a prefix changes. SDXL's second encoder (OpenCLIP ViT-bigG) is
stored as open_clip saves it: ``token_embedding``, ``positional_embedding``, ``transformer.resblocks.N``
with a fused ``attn.in_proj_weight`` (q, k, v rows), and ``text_projection`` applied as ``x @ P``.
It maps onto transformers ``CLIPTextModelWithProjection``; the names follow diffusers'
``DIFFUSERS_TO_LDM_MAPPING["openclip"]`` (``loaders/single_file_utils.py``).

transformers 5 flattened ``CLIPTextModel`` (no ``text_model.`` module prefix), so module names are
normalised by stripping that prefix before mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from .keys import CHUNK, SAME, TRANSPOSE, KeyEntry

CLIP_HEAD_DIM = 64  # CLIP-L (768/12), OpenCLIP-H (1024/16) and bigG (1280/20) all use 64-wide heads


def _strip(name: str) -> str:
    return name[len("text_model.") :] if name.startswith("text_model.") else name


def hf_clip_entry(name: str, prefix: str) -> KeyEntry:
    """The :class:`KeyEntry` of a ``CLIPTextModel`` parameter stored in HF layout under ``prefix``.

    Args:
        name (`str`): module parameter name (``text_model.encoder...`` or, transformers 5, ``encoder...``).
        prefix (`str`): e.g. ``cond_stage_model.transformer.`` (the checkpoint adds ``text_model.``).

    Returns:
        `KeyEntry`: the entry (always the same layout).
    """
    return KeyEntry(name, f"{prefix}text_model.{_strip(name)}")


_OPEN_CLIP_TOP = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
_LAYER = re.compile(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)")
_QKV = {"q_proj": 0, "k_proj": 1, "v_proj": 2}


def open_clip_entry(name: str, prefix: str) -> KeyEntry:
    """The :class:`KeyEntry` of a ``CLIPTextModelWithProjection`` parameter stored in open_clip layout.

    Args:
        name (`str`): module parameter name, e.g. ``text_model.encoder.layers.0.self_attn.k_proj.weight``.
        prefix (`str`): e.g. ``conditioner.embedders.1.model.``.

    Returns:
        `KeyEntry`: ``chunk`` entries for q/k/v (row blocks of ``in_proj_*``), ``transpose`` for the projection.
    """
    if name == "text_projection.weight":
        return KeyEntry(name, prefix + "text_projection", TRANSPOSE)
    short = _strip(name)
    if short in _OPEN_CLIP_TOP:
        return KeyEntry(name, prefix + _OPEN_CLIP_TOP[short])
    m = _LAYER.fullmatch(short)
    if m is None:
        raise KeyError(f"no open_clip name for text encoder parameter {name!r}")
    layer, module, leaf = m[1], m[2], m[3]
    base = f"{prefix}transformer.resblocks.{layer}."
    attention = module.rpartition(".")[2]
    if module.startswith("self_attn.") and attention in _QKV:
        return KeyEntry(name, f"{base}attn.in_proj_{leaf}", CHUNK, _QKV[attention], 3)
    if module not in _OPEN_CLIP_LAYER:
        raise KeyError(f"no open_clip name for text encoder parameter {name!r}")
    return KeyEntry(name, f"{base}{_OPEN_CLIP_LAYER[module]}.{leaf}", SAME)


def _count(parameters: Mapping[str, torch.Tensor], pattern: str) -> int:
    regex = re.compile(pattern)
    found = {int(m[1]) for key in parameters if (m := regex.match(key))}
    return max(found) + 1 if found else 0


def _text_config(
    vocab: int, hidden: int, intermediate: int, layers: int, positions: int, act: str
) -> dict[str, Any]:
    # Real CLIP vocabularies end with <|startoftext|>, <|endoftext|> (49406, 49407); the tiny ones too.
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, hidden // CLIP_HEAD_DIM),
        "max_position_embeddings": positions,
        "hidden_act": act,
        "layer_norm_eps": 1e-5,
        "bos_token_id": vocab - 2,
        "eos_token_id": vocab - 1,
        "pad_token_id": vocab - 1,
        "projection_dim": hidden,
    }


def hf_clip_config(
    parameters: Mapping[str, torch.Tensor], prefix: str, act: str = "quick_gelu"
) -> dict[str, Any]:
    """``CLIPTextConfig`` kwargs for an HF-layout text encoder, read from tensor shapes.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors (only ``.shape`` is read).
        prefix (`str`): e.g. ``cond_stage_model.transformer.``.
        act (`str`, defaults to ``"quick_gelu"``): OpenAI CLIP's activation; shapes cannot tell it.

    Returns:
        `dict`: kwargs for ``transformers.CLIPTextConfig``.
    """
    p = prefix + "text_model."
    vocab, hidden = parameters[p + "embeddings.token_embedding.weight"].shape
    positions = parameters[p + "embeddings.position_embedding.weight"].shape[0]
    intermediate = parameters[p + "encoder.layers.0.mlp.fc1.weight"].shape[0]
    layers = _count(parameters, re.escape(p) + r"encoder\.layers\.(\d+)\.")
    return _text_config(vocab, hidden, intermediate, layers, positions, act)


def open_clip_config(
    parameters: Mapping[str, torch.Tensor], prefix: str, act: str = "gelu"
) -> dict[str, Any]:
    """``CLIPTextConfig`` kwargs for an open_clip-layout text encoder (with projection), from shapes.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors (only ``.shape`` is read).
        prefix (`str`): e.g. ``conditioner.embedders.1.model.``.
        act (`str`, defaults to ``"gelu"``): LAION OpenCLIP models use plain GELU.

    Returns:
        `dict`: kwargs for ``transformers.CLIPTextConfig``, ``projection_dim`` from ``text_projection``.
    """
    vocab, hidden = parameters[prefix + "token_embedding.weight"].shape
    positions = parameters[prefix + "positional_embedding"].shape[0]
    intermediate = parameters[prefix + "transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    layers = _count(parameters, re.escape(prefix) + r"transformer\.resblocks\.(\d+)\.")
    config = _text_config(vocab, hidden, intermediate, layers, positions, act)
    if prefix + "text_projection" in parameters:
        config["projection_dim"] = parameters[prefix + "text_projection"].shape[1]
    return config
