"""Shared pieces of the adapter tests: the kind matrix, non-zero adapter weights, model outputs."""

from __future__ import annotations

from functools import cache

import torch

from lora_bakery.trainer.adapters import make_options

ARCHS = ("sd15", "sdxl")
KINDS = ("lora", "locon", "dora", "loha", "lokr", "ia3", "oft", "dylora")


def options_for(kind: str):
    """Small ranks with 3x3 convs on wherever the kind supports them, so every layer type is covered."""
    values = {"dim": 4, "alpha": 3.0, "conv_dim": 2, "conv_alpha": 1.5}
    if kind == "ia3":
        values.pop("conv_dim"), values.pop("conv_alpha")
    if kind == "oft":
        values.update(dim=4, alpha=1.0)
    if kind == "dylora":
        values["unit"] = 2
    return make_options(kind, **values)


@cache
def checkpoint_state(arch: str) -> dict[str, torch.Tensor]:
    """The tiny checkpoint's tensors (read once per process; never modified by the tests)."""
    from safetensors.torch import load_file

    from lora_bakery.trainer.tiny import tiny_checkpoint

    return load_file(str(tiny_checkpoint(arch)))


def randomize(network, seed: int = 0) -> None:
    """Give every adapter weight non-zero values so the deltas matter (initial deltas are zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for full_name, param in network.named_parameters():
            name = full_name.split(".", 2)[-1]  # adapters.<layer>.<param>: the parameter's own name
            noise = torch.randn(param.shape, generator=generator)
            if name == "dora_scale":
                param.mul_(1.0 + 0.2 * noise)
            elif name == "oft_blocks":
                param.copy_(0.1 * noise)
            elif name == "weight":  # IA3 gains
                param.copy_(0.2 * noise)
            else:
                fan = max(param.shape[-1] if param.dim() == 2 else param[0].numel(), 1)
                param.copy_(noise / fan**0.5)


def model_inputs(views, seed: int = 1) -> dict:
    """Fixed random inputs for the U-Net and token ids for the text encoders."""
    generator = torch.Generator().manual_seed(seed)
    unet_config = views.configs.unet
    context = unet_config["cross_attention_dim"]
    inputs = {
        "sample": torch.randn(1, 4, 8, 8, generator=generator),
        "timestep": torch.tensor([500]),
        "encoder_hidden_states": torch.randn(1, 8, context, generator=generator),
        "ids": torch.randint(0, 400, (1, 6), generator=generator),
    }
    if views.architecture == "sdxl":
        pooled = (
            unet_config["projection_class_embeddings_input_dim"] - 6 * unet_config["addition_time_embed_dim"]
        )
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.randn(1, pooled, generator=generator),
            "time_ids": torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]]),
        }
    return inputs


@torch.no_grad()
def model_outputs(views, inputs: dict) -> dict[str, torch.Tensor]:
    """U-Net noise prediction and every text encoder's last hidden state (and pooled projection)."""
    kwargs = {"added_cond_kwargs": inputs["added_cond_kwargs"]} if "added_cond_kwargs" in inputs else {}
    out = {
        "unet": views.unet(
            inputs["sample"],
            inputs["timestep"],
            encoder_hidden_states=inputs["encoder_hidden_states"],
            **kwargs,
        ).sample
    }
    for index, encoder in enumerate(views.text_encoders):
        result = encoder(inputs["ids"], output_hidden_states=True)
        out[f"te{index}_hidden"] = result.hidden_states[-2]
        out[f"te{index}_last"] = result[0]
        if hasattr(result, "text_embeds"):
            out[f"te{index}_pooled"] = result.text_embeds
    return out


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))
