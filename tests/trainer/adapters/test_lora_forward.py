"""The LoRA layer's fast forward (fewer kernels per step) adds exactly kohya's delta.

``y + up(down(x)) * alpha/dim * multiplier`` is compared with the delta computed the long way
(``updown()``, A1111's own arithmetic) on Linear and 3x3/1x1 Conv layers, in fp32, under bf16
autocast, and on a half-precision layer without autocast (generation on an fp16 model).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lora_bakery.trainer.adapters.lora import LoraModule, LoraOptions


def _layer(kind: str, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    module = nn.Linear(24, 40) if kind == "linear" else nn.Conv2d(8, 12, 3, stride=2, padding=1)
    return module.to(dtype).requires_grad_(False)


def _adapter(module: nn.Module, multiplier: float = 0.7) -> LoraModule:
    lora = LoraModule("lora_unet_x", module, dim=4, alpha=2.0, options=LoraOptions(dim=4, alpha=2.0), multiplier=multiplier)
    with torch.no_grad():
        lora.lora_up.weight.normal_()  # zero-initialised otherwise: the delta would be 0
    lora.apply_to()
    return lora


def _input(kind: str, dtype: torch.dtype) -> torch.Tensor:
    torch.manual_seed(1)
    shape = (3, 5, 24) if kind == "linear" else (2, 8, 9, 9)
    return torch.randn(shape).to(dtype)


def _expected(module: nn.Module, lora: LoraModule, x: torch.Tensor) -> torch.Tensor:
    delta = lora.updown().to(torch.float32)
    xf, w = x.float(), module.weight.float()
    bias = module.bias.float() if module.bias is not None else None
    if isinstance(module, nn.Conv2d):
        return torch.nn.functional.conv2d(xf, w + delta, bias, module.stride, module.padding)
    return torch.nn.functional.linear(xf, w + delta, bias)


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_fast_path_matches_the_merged_weight_in_fp32(kind: str) -> None:
    module = _layer(kind, torch.float32)
    lora = _adapter(module)
    x = _input(kind, torch.float32)
    assert lora._plain_delta()
    torch.testing.assert_close(module(x), _expected(module, lora, x), rtol=1e-5, atol=1e-5)
    lora.restore()


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_fast_path_under_bf16_autocast_and_gradients(kind: str) -> None:
    module = _layer(kind, torch.bfloat16)
    lora = _adapter(module)
    x = _input(kind, torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), _expected(module, lora, x), rtol=3e-2, atol=3e-2)
    out.float().square().mean().backward()
    assert lora.lora_down.weight.grad is not None and lora.lora_up.weight.grad is not None
    assert lora.lora_up.weight.grad.dtype == torch.float32  # the adapter trains in fp32
    lora.restore()


def test_half_layer_without_autocast_computes_the_delta_in_fp32() -> None:
    module = _layer("linear", torch.bfloat16)
    lora = _adapter(module)
    x = _input("linear", torch.bfloat16)
    out = module(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), _expected(module, lora, x), rtol=3e-2, atol=3e-2)
    lora.restore()


def test_dropout_in_training_takes_the_general_path() -> None:
    module = _layer("linear", torch.float32)
    lora = LoraModule("lora_unet_x", module, 4, 2.0, LoraOptions(dim=4, alpha=2.0, dropout=0.5))
    lora.train()
    assert not lora._plain_delta()
    lora.eval()
    assert lora._plain_delta()
