"""LoRA (kohya ``networks.lora``): ``y = W x + up(down(x)) * multiplier * alpha / dim``.

File keys per layer: ``lora_down.weight`` [r, in(, kh, kw)], ``lora_up.weight`` [out, r(, 1, 1)],
``alpha`` (0-dim). 3x3 convs keep the layer's kernel/stride/padding in ``lora_down`` and use a 1x1
``lora_up`` (sd-scripts ``networks/lora.py LoRAModule``). A1111 rebuilds the delta as
``up.reshape(out, -1) @ down.reshape(r, -1)`` (``lyco_helpers.rebuild_conventional``); the same
product is :meth:`LoraModule.updown`.

peft's LoRA computes the same output, but not kohya's rank dropout / module dropout, and it replaces
modules (renaming the host's parameters); this module keeps the host's module tree untouched.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import AdapterModule, NetworkOptions, adapter_input, alpha_tensor, autocast_enabled, scale_factors
from .registry import AdapterKind, register

DOWN = "lora_down.weight"
UP = "lora_up.weight"
ALPHA = "alpha"


@dataclass
class LoraOptions(NetworkOptions):
    """LoRA options: see :class:`NetworkOptions` (``conv_dim`` set makes it LoCon)."""


class LoraModule(AdapterModule):
    """A kohya LoRA layer on a Linear or Conv2d."""

    kind = "lora"

    def __init__(
        self,
        name: str,
        org_module: nn.Module,
        dim: int,
        alpha: float,
        options: NetworkOptions,
        multiplier: float = 1.0,
    ) -> None:
        super().__init__(name, org_module, dim, alpha, options, multiplier)
        self.dropout = options.dropout
        self.rank_dropout = options.rank_dropout
        if isinstance(org_module, nn.Conv2d):
            self.lora_down = nn.Conv2d(
                org_module.in_channels,
                dim,
                org_module.kernel_size,
                org_module.stride,
                org_module.padding,
                bias=False,
            )
            self.lora_up = nn.Conv2d(dim, org_module.out_channels, (1, 1), (1, 1), bias=False)
        else:
            self.lora_down = nn.Linear(org_module.in_features, dim, bias=False)
            self.lora_up = nn.Linear(dim, org_module.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_up.weight)

    def lora_forward(self, x: torch.Tensor) -> torch.Tensor:
        """``up(down(x)) * scale`` with kohya's dropout and rank dropout (no multiplier)."""
        lx = self.lora_down(adapter_input(x, self.lora_down.weight.dtype))
        if self.dropout and self.training:
            lx = F.dropout(lx, p=self.dropout)
        scale = self.scale()
        if self.rank_dropout and self.training:
            mask = torch.rand((lx.size(0), self.dim), device=lx.device) > self.rank_dropout
            if lx.dim() == 3:
                mask = mask.unsqueeze(1)  # text encoder / Linear on tokens: [B, 1, r]
            elif lx.dim() == 4:
                mask = mask.unsqueeze(-1).unsqueeze(-1)  # conv: [B, r, 1, 1]
            lx = lx * mask
            scale = scale / (1.0 - self.rank_dropout)
        return self.lora_up(lx) * scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._org_forward(x)
        if self.multiplier == 0.0 or self.skip():
            return y
        if self._plain_delta():
            return self._add_plain_delta(y, x)
        return y + (self.lora_forward(x) * self.multiplier).to(y.dtype)

    def _plain_delta(self) -> bool:
        """Whether this step's delta is just ``up(down(x)) * scale`` (no dropout, no subclass math)."""
        if type(self).lora_forward is not LoraModule.lora_forward:
            return False  # DyLoRA and others compute their own delta
        return not (self.training and (self.dropout or self.rank_dropout))

    def _add_plain_delta(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``y + up(down(x)) * scale * multiplier`` in as few kernels as the math allows.

        A training step runs this for every adapted layer (192 in SD1.5, 722 in SDXL), and on a GPU
        the step is often bound by the CPU launching kernels, not by the GPU running them. Under
        autocast the functional ops cast ``x`` and the fp32 weights themselves, so the explicit cast
        of ``x`` to fp32 is skipped, and the scale rides on the final add (``alpha=``) instead of two
        multiplications: four launches fewer per layer and step, the same sum. Without autocast
        (generation on a half-precision model) the delta is computed in the adapter's fp32 as before.
        """
        down, up = self.lora_down.weight, self.lora_up.weight
        if not autocast_enabled(x.device.type):
            x = x.to(down.dtype)
        if isinstance(self.lora_down, nn.Conv2d):
            hidden = F.conv2d(x, down, None, self.lora_down.stride, self.lora_down.padding)
            out = F.conv2d(hidden, up)
        else:
            out = F.linear(F.linear(x, down), up)
        return torch.add(y, out.to(y.dtype), alpha=self.scale() * self.multiplier)

    def updown(self) -> torch.Tensor:
        up = self.lora_up.weight
        down = self.lora_down.weight
        shape = self.org_module.weight.shape
        delta = up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)
        return delta.reshape(shape) * (self.scale() * self.multiplier)

    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        return {DOWN: self.lora_down.weight, UP: self.lora_up.weight, ALPHA: alpha_tensor(self.alpha_value)}

    def load_kohya_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._copy(self.lora_down.weight, tensors[DOWN], DOWN)
        self._copy(self.lora_up.weight, tensors[UP], UP)
        if ALPHA in tensors:
            self.alpha_value = float(tensors[ALPHA])

    def max_norm(self, max_norm: float) -> tuple[bool, float]:
        return scale_factors(self, [self.lora_up.weight, self.lora_down.weight], max_norm)


KIND = register(AdapterKind("lora", LoraOptions, LoraModule, diffusers_loadable=True))
