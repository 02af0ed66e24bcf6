"""Full-size SD1.5 and SDXL configs from shapes alone (meta tensors: no weights allocated)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import torch
from diffusers.loaders import single_file_utils as sfu

from lora_bakery.trainer.models import (
    ModelConfigs,
    checkpoint_key_from_live_name,
    checkpoint_shapes,
    detect_architecture,
    infer_configs,
)
from lora_bakery.trainer.models.families import family_for
from lora_bakery.trainer.models.views import empty_module

from . import oracle

LIVE_SD15 = Path(__file__).parent / "data" / "a1111_sd15_parameters.txt"

# Published diffusers configs (runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-xl-base-1.0).
SD15_UNET = {
    "sample_size": 64,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
    "attention_head_dim": 8,
    "use_linear_projection": False,
    "transformer_layers_per_block": 1,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
}
SDXL_UNET = {
    **SD15_UNET,
    "sample_size": 128,
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "block_out_channels": [320, 640, 1280],
    "cross_attention_dim": 2048,
    "attention_head_dim": [5, 10, 20],
    "use_linear_projection": True,
    "transformer_layers_per_block": [1, 2, 10],
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 2816,
}
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
}
CLIP_L = {
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "bos_token_id": 49406,
    "eos_token_id": 49407,
}
BIG_G = {
    **CLIP_L,
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}


def _live_sd15() -> dict[str, tuple[int, ...]]:
    shapes = {}
    for line in LIVE_SD15.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, shape = line.split(" ", 1)
        shapes[checkpoint_key_from_live_name(name)] = tuple(int(n) for n in re.findall(r"\d+", shape))
    return shapes


def _meta(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}


def _subset(config: dict, expected: dict) -> dict:
    return {key: config.get(key) for key in expected}


@pytest.fixture(scope="module")
def sd15_meta() -> dict[str, torch.Tensor]:
    return _meta(_live_sd15())


@pytest.fixture(scope="module")
def sdxl_configs() -> ModelConfigs:
    vae = {**VAE, "sample_size": 1024, "scaling_factor": 0.13025}
    return ModelConfigs("sdxl", {**SDXL_UNET}, vae, [dict(CLIP_L, projection_dim=768), BIG_G])


def test_sd15_from_live_a1111_shapes(sd15_meta):
    assert len(sd15_meta) == 1130
    assert detect_architecture(sd15_meta) == "sd1"
    configs = infer_configs(sd15_meta)
    assert configs.unet == SD15_UNET
    assert _subset(configs.vae, VAE) == VAE and configs.vae["scaling_factor"] == 0.18215
    assert len(configs.text_encoders) == 1 and _subset(configs.text_encoders[0], CLIP_L) == CLIP_L


def test_key_tables_reproduce_the_live_a1111_sd15_layout(sd15_meta):
    """The strongest check of the SD1 tables: every name and shape of a real model, nothing more."""
    ours = checkpoint_shapes(infer_configs(sd15_meta))
    live = {key: tuple(t.shape) for key, t in sd15_meta.items()}
    assert set(ours) == set(live)
    assert ours == live


def test_sdxl_full_size_round_trip_and_published_sizes(sdxl_configs):
    shapes = checkpoint_shapes(sdxl_configs)
    meta = _meta(shapes)
    assert detect_architecture(meta) == "sdxl"
    configs = infer_configs(meta)
    assert configs.unet == SDXL_UNET
    assert _subset(configs.text_encoders[0], CLIP_L) == CLIP_L
    assert _subset(configs.text_encoders[1], BIG_G) == BIG_G
    # Known SGM keys of sd_xl_base_1.0.safetensors.
    assert shapes["model.diffusion_model.label_emb.0.0.weight"] == (1280, 2816)
    assert shapes["model.diffusion_model.input_blocks.7.1.transformer_blocks.9.attn2.to_k.weight"] == (
        1280,
        2048,
    )
    assert shapes["model.diffusion_model.input_blocks.4.1.proj_in.weight"] == (640, 640)
    assert shapes["model.diffusion_model.output_blocks.2.2.conv.weight"] == (1280, 1280, 3, 3)
    assert shapes["model.diffusion_model.output_blocks.8.0.skip_connection.weight"] == (320, 640, 1, 1)
    assert shapes["conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight"] == (
        3840,
        1280,
    )
    assert shapes["conditioner.embedders.1.model.text_projection"] == (1280, 1280)
    assert shapes["conditioner.embedders.1.model.positional_embedding"] == (77, 1280)
    assert shapes["first_stage_model.encoder.mid.attn_1.q.weight"] == (512, 512, 1, 1)
    # Published parameter counts: U-Net 2.567 B, CLIP-L 123.06 M, bigG + projection 694.66 M, VAE 83.65 M.
    counts = {}
    for component in family_for("sdxl").components(configs):
        counts[component.name] = sum(p.numel() for p in empty_module(component).parameters())
    assert counts == {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    }


def _yaml(base: dict, unet: dict, ddconfig: dict) -> dict:
    yaml = copy.deepcopy(base)
    params = yaml["model"]["params"]
    params["unet_config" if "unet_config" in params else "network_config"]["params"].update(unet)
    params["first_stage_config"]["params"]["ddconfig"].update(ddconfig)
    return yaml


FULL_VAE = {"ch": 128, "ch_mult": [1, 2, 4, 4]}


def test_sd15_matches_diffusers_config_from_v1_inference_yaml(sd15_meta):
    """Independent: diffusers' own config builder fed v1-inference.yaml's values."""
    yaml = _yaml(
        oracle.SD15_YAML, {"model_channels": 320, "channel_mult": [1, 2, 4, 4], "context_dim": 768}, FULL_VAE
    )
    theirs = sfu.create_unet_diffusers_config_from_ldm(yaml, sd15_meta)
    ours = infer_configs(sd15_meta).unet
    for key in (
        "down_block_types",
        "up_block_types",
        "block_out_channels",
        "layers_per_block",
        "cross_attention_dim",
        "attention_head_dim",
        "use_linear_projection",
        "in_channels",
        "out_channels",
        "transformer_layers_per_block",
        "sample_size",
    ):
        assert ours[key] == theirs[key], key
    vae = sfu.create_vae_diffusers_config_from_ldm(yaml, sd15_meta)
    for key in ("block_out_channels", "layers_per_block", "latent_channels", "scaling_factor"):
        assert infer_configs(sd15_meta).vae[key] == vae[key], key


def test_sdxl_matches_diffusers_config_from_sd_xl_base_yaml(sdxl_configs):
    meta = _meta(checkpoint_shapes(sdxl_configs))
    unet = {
        "model_channels": 320,
        "channel_mult": [1, 2, 4],
        "context_dim": 2048,
        "adm_in_channels": 2816,
        "transformer_depth": [0, 2, 10],
        "num_head_channels": 64,
    }
    yaml = _yaml(oracle.SDXL_YAML, unet, FULL_VAE)
    del yaml["model"]["params"]["network_config"]["params"]["num_heads"]
    theirs = sfu.create_unet_diffusers_config_from_ldm(yaml, meta)
    ours = infer_configs(meta).unet
    for key in (
        "down_block_types",
        "up_block_types",
        "block_out_channels",
        "layers_per_block",
        "cross_attention_dim",
        "attention_head_dim",
        "use_linear_projection",
        "addition_embed_type",
        "addition_time_embed_dim",
        "projection_class_embeddings_input_dim",
        "sample_size",
    ):
        assert ours[key] == theirs[key], key
    # sd_xl_base.yaml says depth 0 for the attention-free level; diffusers ignores that entry.
    assert ours["transformer_layers_per_block"][1:] == theirs["transformer_layers_per_block"][1:]
