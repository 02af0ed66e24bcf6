"""Gradient checkpointing on the views with our own adapters (diffusers 0.31/0.39, transformers 4.30/4.57):
the blocks really are recomputed in backward, the gradients are the same, and activations take less memory."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from lora_bakery.trainer.adapters import create_network, make_options
from lora_bakery.trainer.loop.checkpoint import load_checkpoint
from lora_bakery.trainer.loop.setup import HostState, prepare_modules
from lora_bakery.trainer.loop.text import TextConditioner, sdxl_time_ids
from lora_bakery.trainer.memory_probe import LiveTensorBytes
from lora_bakery.trainer.models import build_views

pytestmark = pytest.mark.usefixtures("one_thread")


class _Item:
    """What ``sdxl_time_ids`` reads of a training item."""

    class choice:  # noqa: N801 - mirrors TrainItem.choice
        size = (128, 128)
        bucket = (128, 128)


def _step(parts, views, checkpointing: bool) -> tuple[dict, Counter, int]:
    torch.manual_seed(0)
    # with conv_dim (LoCon) the ResNets are adapted too
    network = create_network(views, "lora", make_options("lora", dim=4, alpha=4, conv_dim=4), train_unet=True,
                             train_text_encoder=True)
    with torch.no_grad():
        for adapter in network.adapters.values():
            adapter.lora_up.weight.normal_(std=0.05)  # zero-initialised up weights would give zero down gradients
    host = HostState()
    prepare_modules(views, host, True, checkpointing)
    network.apply()
    calls: Counter = Counter()
    # count calls of each adapted host layer (its forward is the adapter's, its hooks still fire)
    hooks = [a.org_module.register_forward_pre_hook(lambda m, i, name=name: calls.update([name]))
             for name, a in network.adapters.items()]
    try:
        text = TextConditioner(views.architecture, views.text_encoders, parts.tokenizers)
        torch.manual_seed(1)
        latents = torch.randn(2, 4, 16, 16)
        timesteps = torch.tensor([100, 700])
        with LiveTensorBytes() as probe:
            context, pooled = text.encode(["a photo of sks", "a red disc"], torch.device("cpu"))
            added = None
            if pooled is not None:
                added = {"text_embeds": pooled, "time_ids": sdxl_time_ids([_Item(), _Item()], torch.device("cpu"), context.dtype)}
            pred = views.unet(latents, timesteps, context, added_cond_kwargs=added).sample
            loss = (pred.float() ** 2).mean()
            loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in network.named_parameters() if p.grad is not None}
        return grads, calls, probe.peak
    finally:
        for hook in hooks:
            hook.remove()
        network.remove()
        host.restore(parts.parameters)


@pytest.mark.parametrize("fixture", ["tiny_sd15_path", "tiny_sdxl_path"])
def test_checkpointing_recomputes_blocks_same_gradients_less_memory(request, fixture):
    parts = load_checkpoint(request.getfixturevalue(fixture))
    views = build_views(parts.parameters, parts.architecture)
    plain_grads, plain_calls, plain_peak = _step(parts, views, False)
    ckpt_grads, ckpt_calls, ckpt_peak = _step(parts, views, True)

    # (SDXL conditions on the penultimate text-encoder layers: the last layers' adapters get no gradient)
    assert plain_grads.keys() == ckpt_grads.keys() and len(plain_grads) >= 0.9 * 2 * len(plain_calls)
    for name, grad in plain_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(ckpt_grads[name], grad, rtol=1e-4, atol=1e-7, msg=name)
    assert all(n == 1 for n in plain_calls.values())
    # layers inside a checkpointed unit run again in backward: U-Net ResNets and transformer layers, CLIP layers
    # (a layer whose output the loss never reads is not recomputed: backward does not reach it)
    recomputed = {name for name, n in ckpt_calls.items() if n == 2}
    used = {n for n in plain_calls if f"adapters.{n}.lora_down.weight" in plain_grads}
    # diffusers checkpoints every ResNet but the mid block's first (it runs before the mid block's loop);
    # kohya names ResNet layers resnets_* (SD1) or in_layers/out_layers/emb_layers (SDXL)
    resnet = ("resnets", "in_layers", "out_layers", "emb_layers")
    unet_inside = {n for n in used if n.startswith("lora_unet_") and ("transformer_blocks" in n or any(r in n for r in resnet))
                   and "mid_block_resnets_0" not in n and "middle_block_0_" not in n}
    assert any("transformer_blocks" in n for n in unet_inside) and any(r in n for n in unet_inside for r in resnet)
    text_layers = {n for n in used if n.startswith("lora_te")}
    assert unet_inside and unet_inside <= recomputed
    assert text_layers and text_layers <= recomputed
    assert all(n <= 2 for n in ckpt_calls.values())
    assert ckpt_peak < 0.8 * plain_peak, (ckpt_peak, plain_peak)
    # the views are exactly as before: no checkpointing flag, eval mode, frozen
    assert not views.unet.training and not any(p.requires_grad for p in views.unet.parameters())
    assert not getattr(views.unet, "is_gradient_checkpointing", False)
