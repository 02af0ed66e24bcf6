"""DyLoRA (kohya ``networks.dylora``): LoRA trained one rank band at a time, saved as plain LoRA.

Training step (sd-scripts ``networks/dylora.py DyLoRAModule.forward``): draw ``b`` uniformly from
``0, unit, 2*unit, ... < dim``; only ranks ``b .. b+unit`` get gradients; the output is scaled by
``sqrt(dim / (b + unit))`` on top of ``alpha / dim``. The file holds ordinary ``lora_down`` /
``lora_up`` / ``alpha`` (any leading ``k*unit`` ranks can be cut out later with a LoRA resizer).

Outside training the layer is plain LoRA (all ranks, ``alpha / dim``), which is what A1111 applies.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import torch

from .base import NetworkOptions, adapter_input
from .lora import LoraModule
from .registry import AdapterKind, register


@dataclass
class DyloraOptions(NetworkOptions):
    """DyLoRA options (recipes: 64/32, unit 4).

    Attributes:
        unit (`int`, defaults to 4): width of the rank band trained per step; ``dim`` (and
            ``conv_dim``) must be multiples of it.
    """

    unit: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.unit < 1:
            raise ValueError(f"unit must be at least 1, got {self.unit}")
        for name in ("dim", "conv_dim"):
            value = getattr(self, name)
            if value is not None and value % self.unit:
                raise ValueError(f"{name} {value} must be a multiple of unit {self.unit} (DyLoRA)")

    def network_args(self) -> dict[str, str]:
        return {**super().network_args(), "unit": str(self.unit)}


def _band(weight: torch.Tensor, start: int, stop: int, dim: int) -> torch.Tensor:
    """``weight`` with gradients only for rows (``dim=0``) or columns (``dim=1``) ``start:stop``."""
    index = torch.arange(weight.shape[dim], device=weight.device)
    mask = ((index >= start) & (index < stop)).to(weight.dtype)
    shape = [1] * weight.dim()
    shape[dim] = -1
    mask = mask.reshape(shape)
    return weight * mask + weight.detach() * (1 - mask)


class DyloraModule(LoraModule):
    """LoRA whose training step updates one random rank band (see the module docstring)."""

    kind = "dylora"

    def __init__(self, name, org_module, dim, alpha, options, multiplier=1.0) -> None:
        super().__init__(name, org_module, dim, alpha, options, multiplier)
        self.unit = min(getattr(options, "unit", 1), dim)

    def lora_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().lora_forward(x)
        start = random.randrange(0, self.dim, self.unit)
        stop = start + self.unit
        down = _band(self.lora_down.weight, start, stop, 0)
        up = _band(self.lora_up.weight, start, stop, 1)
        x = adapter_input(x, down.dtype)
        if isinstance(self.lora_down, torch.nn.Conv2d):
            lx = torch.nn.functional.conv2d(
                x, down, None, self.lora_down.stride, self.lora_down.padding, self.lora_down.dilation
            )
            out = torch.nn.functional.conv2d(lx, up)
        else:
            out = torch.nn.functional.linear(torch.nn.functional.linear(x, down), up)
        return out * (self.scale() * math.sqrt(self.dim / stop))


KIND = register(
    AdapterKind(
        "dylora", DyloraOptions, DyloraModule, network_module="networks.dylora", diffusers_loadable=True
    )
)
