"""(IA)^3 (LyCORIS ``algo=ia3``): a learned per-output-channel gain on Linear layers.

A1111 1.10.1 ``network_ia3.py``: ``updown = W * w.reshape(-1, 1)`` (``on_input`` false), no alpha/dim
scale (``calc_scale`` is 1 without ``dim``), times the multiplier; so the layer becomes
``W * (1 + multiplier * w)``. File keys: ``weight`` [out], ``on_input`` (bool, 0-dim).

Only Linear layers: A1111's broadcast ``W * w[:, None]`` is wrong for 4-D conv weights, and the
fused OpenCLIP q/k/v of SDXL's second text encoder fails there on shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .base import AdapterModule, NetworkOptions
from .registry import AdapterKind, register

WEIGHT = "weight"
ON_INPUT = "on_input"


@dataclass
class Ia3Options(NetworkOptions):
    """IA3 options; ``dim``/``alpha`` are not used by the math (recipes: lr 5e-3..1e-2)."""


class Ia3Module(AdapterModule):
    """Per-output gain ``(1 + multiplier * w)`` on a Linear's weight."""

    kind = "ia3"

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
        self.weight = nn.Parameter(torch.zeros(org_module.out_features))

    @classmethod
    def can_wrap(cls, module: nn.Module, dim: int, fused_qkv: bool) -> bool:
        return isinstance(module, nn.Linear) and not fused_qkv

    def scale(self) -> float:
        return 1.0

    def updown(self) -> torch.Tensor:
        return self.org_weight().float() * self.weight.reshape(-1, 1) * self.multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._org_forward(x)
        if self.multiplier == 0.0 or self.skip():
            return y
        bias = self.org_module.bias
        base = y if bias is None else y - bias
        return y + (base.float() * (self.weight * self.multiplier)).to(y.dtype)

    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        return {WEIGHT: self.weight, ON_INPUT: torch.tensor(False)}

    def load_kohya_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        if ON_INPUT in tensors and bool(tensors[ON_INPUT]):
            raise ValueError(f"{self.lora_name}: IA3 on_input=True layers are not supported")
        self._copy(self.weight, tensors[WEIGHT], WEIGHT)


KIND = register(AdapterKind("ia3", Ia3Options, Ia3Module, network_module="lycoris.kohya", algo="ia3"))
