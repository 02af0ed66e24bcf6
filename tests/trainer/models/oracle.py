"""An independent reference: the tiny checkpoints converted by diffusers' own single-file converter.

``diffusers.loaders.single_file_utils`` (the code behind ``from_single_file``) converts LDM/SGM
checkpoints with its own key tables. It is given ``original_config`` dicts shaped like
``v1-inference.yaml`` / ``sd_xl_base.yaml`` with the tiny sizes written out here by hand, so neither
the configs nor the key names come from ``lora_bakery.trainer.models``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders import single_file_utils as sfu
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

_DDCONFIG = {  # first_stage_config.params.ddconfig (tiny)
    "double_z": True,
    "z_channels": 4,
    "resolution": 256,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 1, 2, 2],
    "num_res_blocks": 2,
    "attn_resolutions": [],
    "dropout": 0.0,
}

# v1-inference.yaml with tiny sizes (model_channels 32, context 64).
SD15_YAML = {
    "model": {
        "params": {
            "scale_factor": 0.18215,
            "unet_config": {
                "params": {
                    "image_size": 32,
                    "in_channels": 4,
                    "out_channels": 4,
                    "model_channels": 32,
                    "attention_resolutions": [4, 2, 1],
                    "num_res_blocks": 2,
                    "channel_mult": [1, 2, 2, 2],
                    "num_heads": 8,
                    "use_spatial_transformer": True,
                    "transformer_depth": 1,
                    "context_dim": 64,
                    "use_checkpoint": True,
                    "legacy": False,
                }
            },
            "first_stage_config": {"params": {"ddconfig": _DDCONFIG}},
        }
    }
}

# sd_xl_base.yaml with tiny sizes. Real SDXL says num_head_channels: 64; with 64-wide tiny levels that is
# one head, written as num_heads: 1 because diffusers' converter computes model_channels // 64 = 0 here.
SDXL_YAML = {
    "model": {
        "params": {
            "scale_factor": 0.13025,
            "network_config": {
                "params": {
                    "adm_in_channels": 128 + 6 * 32,
                    "num_classes": "sequential",
                    "in_channels": 4,
                    "out_channels": 4,
                    "model_channels": 32,
                    "attention_resolutions": [4, 2],
                    "num_res_blocks": 2,
                    "channel_mult": [1, 2, 2],
                    "num_heads": 1,
                    "use_linear_in_transformer": True,
                    "transformer_depth": [0, 1, 2],
                    "context_dim": 192,
                    "spatial_transformer_attn_type": "softmax-xformers",
                }
            },
            "first_stage_config": {"params": {"ddconfig": _DDCONFIG}},
        }
    }
}

SD15_TEXT = {"hidden_size": 64, "intermediate_size": 256, "num_hidden_layers": 3, "hidden_act": "quick_gelu"}
SDXL_TEXT_2 = {"hidden_size": 128, "intermediate_size": 512, "num_hidden_layers": 3, "hidden_act": "gelu"}


def _load(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> torch.nn.Module:
    """Strict load, after the transformers-version fix-ups diffusers itself applies."""
    own = model.state_dict()
    if not hasattr(model, "text_model"):  # transformers 5 flattened CLIPTextModel
        state = {k.removeprefix("text_model."): v for k, v in state.items()}
    # position_ids is a buffer, persistent in transformers 4.30 and not in 4.31+: no weight to compare.
    state = {k: v for k, v in state.items() if not (k.endswith("position_ids") and k not in own)}
    state.update({k: v for k, v in own.items() if k.endswith("position_ids") and k not in state})
    model.load_state_dict(state, strict=True)
    return model.eval()


def _clip_config(vocab_size: int, **kwargs) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        max_position_embeddings=77,
        num_attention_heads=kwargs["hidden_size"] // 64,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        projection_dim=kwargs["hidden_size"],
        **kwargs,
    )


def unet(checkpoint: Mapping[str, torch.Tensor], yaml: dict) -> UNet2DConditionModel:
    config = sfu.create_unet_diffusers_config_from_ldm(yaml, checkpoint)
    if yaml is SDXL_YAML:  # diffusers only recognises SDXL by a 2048/1280 context width
        config.update(class_embed_type=None, addition_embed_type="text_time", addition_time_embed_dim=32)
    state = sfu.convert_ldm_unet_checkpoint(dict(checkpoint), config)
    return _load(UNet2DConditionModel(**config), state)


def vae(checkpoint: Mapping[str, torch.Tensor], yaml: dict) -> AutoencoderKL:
    config = sfu.create_vae_diffusers_config_from_ldm(yaml, checkpoint)
    state = sfu.convert_ldm_vae_checkpoint(dict(checkpoint), config)
    return _load(AutoencoderKL(**config), state)


def clip(checkpoint: Mapping[str, torch.Tensor], vocab_size: int) -> CLIPTextModel:
    state = sfu.convert_ldm_clip_checkpoint(dict(checkpoint))
    return _load(CLIPTextModel(_clip_config(vocab_size, **SD15_TEXT)), state)


def open_clip(checkpoint: Mapping[str, torch.Tensor], vocab_size: int) -> CLIPTextModelWithProjection:
    model = CLIPTextModelWithProjection(_clip_config(vocab_size, **SDXL_TEXT_2))
    state = sfu.convert_open_clip_checkpoint(model, dict(checkpoint), prefix="conditioner.embedders.1.model.")
    return _load(model, state)
