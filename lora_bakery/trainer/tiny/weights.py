"""Tiny SD1.5 / SDXL checkpoints in original key layout, with deterministic non-trivial weights.

The configs keep the real structure (SD1.5: 4 levels x 2 res blocks, attention at levels 0-2, 8 heads;
SDXL: 3 levels, transformer depth 0/1/2, 64-wide heads, two text encoders, pooled + 6 x time-embed
added conditioning; VAE: 4 levels, 2 res blocks, mid attention) with small channels.

Keys and shapes come from empty diffusers/transformers modules mapped through the SAME key tables
the view builder uses (:mod:`lora_bakery.trainer.models`), read backwards. Values are drawn per key
from a generator seeded by the key's hash, so the file does not depend on module creation order
(diffusers 0.31 and 0.39 give the same bytes on the same torch). Norm weights are 1 + noise and
biases are noise, so every tensor matters when outputs are compared.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from ..models.base import ModelConfigs
from ..models.layout import checkpoint_shapes
from .tokenizer import MAX_LENGTH, VOCAB_SIZE

ARCHITECTURES = {"sd15": "sd1", "sdxl": "sdxl"}


def _text(hidden: int, layers: int, act: str) -> dict[str, Any]:
    return {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": hidden,
        "intermediate_size": 4 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": max(1, hidden // 64),
        "max_position_embeddings": MAX_LENGTH,
        "hidden_act": act,
        "layer_norm_eps": 1e-5,
        "bos_token_id": VOCAB_SIZE - 2,
        "eos_token_id": VOCAB_SIZE - 1,
        "pad_token_id": VOCAB_SIZE - 1,
        "projection_dim": hidden,
    }


def _vae(scaling_factor: float, sample_size: int) -> dict[str, Any]:
    return {
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "block_out_channels": [32, 32, 64, 64],
        "layers_per_block": 2,
        "latent_channels": 4,
        "norm_num_groups": 32,
        "sample_size": sample_size,
        "scaling_factor": scaling_factor,
    }


_UNET_COMMON = {
    "in_channels": 4,
    "out_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
}
_UNET_COMMON.update(flip_sin_to_cos=True, freq_shift=0)


def tiny_configs(arch: str) -> ModelConfigs:
    """The configs of the tiny models (what ``infer_configs`` must read back from the file).

    Args:
        arch (`str`): ``"sd15"`` or ``"sdxl"``.

    Returns:
        `ModelConfigs`: U-Net, VAE and text encoder configs.
    """
    if arch == "sd15":
        unet = {
            **_UNET_COMMON,
            "sample_size": 64,
            "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
            "block_out_channels": [32, 64, 64, 64],
            "cross_attention_dim": 64,
            "attention_head_dim": 8,
            "use_linear_projection": False,
            "transformer_layers_per_block": 1,
        }
        return ModelConfigs("sd1", unet, _vae(0.18215, 512), [_text(64, 3, "quick_gelu")])
    if arch == "sdxl":
        text, text_2 = _text(64, 3, "quick_gelu"), _text(128, 3, "gelu")
        unet = {
            **_UNET_COMMON,
            "sample_size": 128,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "block_out_channels": [32, 64, 64],
            "cross_attention_dim": 64 + 128,
            "attention_head_dim": 1,  # channels // 64, at least 1
            "use_linear_projection": True,
            "transformer_layers_per_block": [1, 1, 2],
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 32,
            "projection_class_embeddings_input_dim": 128 + 6 * 32,
        }
        return ModelConfigs("sdxl", unet, _vae(0.13025, 1024), [text, text_2])
    raise ValueError(f"unknown tiny architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")


def _seed(key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"bakery-tiny-v1:{key}".encode()).digest()[:8], "little") >> 1


def _values(key: str, shape: tuple[int, ...]) -> torch.Tensor:
    """Deterministic values for one checkpoint tensor, scaled so activations stay O(1)."""
    generator = torch.Generator().manual_seed(_seed(key))
    noise = torch.randn(shape, generator=generator, dtype=torch.float32)
    if len(shape) == 1:
        return 1.0 + 0.1 * noise if key.endswith("weight") else 0.1 * noise  # norm weights / biases
    if "embedding" in key:
        return 0.1 * noise
    fan_in = shape[0] if key.endswith("text_projection") else int(torch.tensor(shape[1:]).prod())
    return noise / fan_in**0.5


def _extras(arch: str) -> dict[str, torch.Tensor]:
    """Non-weight tensors real files carry (the view builder must ignore them)."""
    prefix = "cond_stage_model.transformer." if arch == "sd15" else "conditioner.embedders.0.transformer."
    extras = {prefix + "text_model.embeddings.position_ids": torch.arange(MAX_LENGTH).unsqueeze(0)}
    if arch == "sd15":
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float64) ** 2
        extras["alphas_cumprod"] = torch.cumprod(1.0 - betas, dim=0).float()
    return extras


def tiny_state_dict(arch: str) -> dict[str, torch.Tensor]:
    """The tiny checkpoint's tensors in original (LDM/SGM) key layout, float32, on the CPU.

    Args:
        arch (`str`): ``"sd15"`` or ``"sdxl"``.

    Returns:
        `dict[str, torch.Tensor]`: checkpoint key -> tensor.
    """
    state = {
        key: _values(key, shape).contiguous() for key, shape in checkpoint_shapes(tiny_configs(arch)).items()
    }
    state.update(_extras(arch))
    return state
