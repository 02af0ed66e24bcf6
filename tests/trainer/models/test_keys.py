"""Name helpers, architecture detection and the noise schedule config."""

from __future__ import annotations

import pytest
import torch

from lora_bakery.trainer.models import (
    checkpoint_key_from_live_name,
    detect_architecture,
    noise_scheduler_config,
)
from lora_bakery.trainer.models.clip import open_clip_entry
from lora_bakery.trainer.models.keys import CHUNK, TRANSPOSE, KeyEntry, checkpoint_shape, module_view


@pytest.mark.parametrize(
    ("live", "key"),
    [
        (
            "cond_stage_model.wrapped.transformer.text_model.embeddings.token_embedding.wrapped.weight",
            "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight",
        ),
        (
            "conditioner.embedders.1.wrapped.model.transformer.resblocks.0.attn.in_proj_weight",
            "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
        ),
        ("model.diffusion_model.out.2.weight", "model.diffusion_model.out.2.weight"),
        ("model.unwrapped_thing.wrapped_x.weight", "model.unwrapped_thing.wrapped_x.weight"),
    ],
)
def test_checkpoint_key_from_live_name(live, key):
    assert checkpoint_key_from_live_name(live) == key


def test_views_alias_and_invert():
    fused = torch.arange(12.0).reshape(6, 2)
    entries = [open_clip_entry(f"text_model.encoder.layers.0.self_attn.{n}_proj.weight", "m.") for n in "qkv"]
    assert [e.layout for e in entries] == [CHUNK] * 3 and [e.index for e in entries] == [0, 1, 2]
    views = [module_view(e, fused) for e in entries]
    assert all(v.untyped_storage().data_ptr() == fused.untyped_storage().data_ptr() for v in views)
    assert torch.equal(torch.cat(views), fused)
    assert checkpoint_shape(entries, [v.shape for v in views]) == (6, 2)
    projection = open_clip_entry("text_projection.weight", "m.")
    assert projection == KeyEntry("text_projection.weight", "m.text_projection", TRANSPOSE)
    p = torch.randn(3, 5)
    assert torch.equal(module_view(projection, p), p.t())


def test_transformers_5_flat_names_map_like_4x():
    from lora_bakery.trainer.models.clip import hf_clip_entry

    flat = hf_clip_entry("encoder.layers.3.mlp.fc1.weight", "cond_stage_model.transformer.")
    nested = hf_clip_entry("text_model.encoder.layers.3.mlp.fc1.weight", "cond_stage_model.transformer.")
    assert (
        flat.source
        == nested.source
        == "cond_stage_model.transformer.text_model.encoder.layers.3.mlp.fc1.weight"
    )


UNET = "model.diffusion_model.input_blocks.0.0.weight"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([UNET, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"], "sd1"),
        ([UNET, "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"], "sd2"),
        (
            [
                UNET,
                "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight",
                "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight",
            ],
            "sdxl",
        ),
    ],
)
def test_detect_architecture(keys, expected):
    assert detect_architecture(keys) == expected


def test_detect_rejects_unknown_layouts():
    with pytest.raises(ValueError, match="lora_unet_x"):
        detect_architecture(["lora_unet_x.lora_down.weight"])
    with pytest.raises(ValueError, match="refiner"):
        detect_architecture(
            [UNET, "conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight"]
        )
    with pytest.raises(ValueError, match="no keys"):
        detect_architecture([])


@pytest.mark.parametrize(("prediction", "expected"), [("eps", "epsilon"), ("v", "v_prediction")])
def test_noise_scheduler_config_builds_schedulers(prediction, expected):
    from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler

    config = noise_scheduler_config("sdxl", prediction)
    assert config["prediction_type"] == expected
    ddpm = DDPMScheduler.from_config(config)
    assert ddpm.config.num_train_timesteps == 1000 and ddpm.config.beta_schedule == "scaled_linear"
    # scaled_linear: betas = linspace(sqrt(0.00085), sqrt(0.012), 1000) ** 2, as the LDM yaml's linear_start/end.
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000) ** 2
    torch.testing.assert_close(ddpm.betas, betas)
    DDIMScheduler.from_config(config).set_timesteps(10)
    EulerDiscreteScheduler.from_config(config).set_timesteps(10)
    with pytest.raises(ValueError):
        noise_scheduler_config("sd3")
    with pytest.raises(ValueError):
        noise_scheduler_config("sd1", "x0")
