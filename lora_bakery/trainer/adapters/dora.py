"""DoRA (weight-decomposed LoRA) in the layout AUTOMATIC1111 1.10.1 applies: LoRA keys plus ``dora_scale``.

A1111 (``network.py NetworkModule.apply_weight_decompose``, PR #15160) merges a DoRA layer as::

    M = W + up @ down * alpha / dim
    W' = W + multiplier * (dora_scale * M / ||M||_col - W)

where ``||M||_col`` is the norm of each INPUT column (``M.transpose(0, 1).reshape(in, -1).norm(dim=1)``),
so ``dora_scale`` has shape ``[1, in]`` (``[1, in, 1, 1]`` for convs): the LyCORIS ``dora_wd`` layout
with ``wd_on_out=False``. peft's DoRA normalises output rows (``lora_magnitude_vector`` [out]); that is
a different function, so peft cannot be used here. :meth:`DoraModule.updown` is the formula above
and the forward pass uses it, so the trained layer is exactly what A1111 renders.

``dora_scale`` starts at the column norms of ``W`` (so the initial delta is zero).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .base import NetworkOptions
from .lora import LoraModule
from .registry import AdapterKind, register

DORA_SCALE = "dora_scale"


@dataclass
class DoraOptions(NetworkOptions):
    """DoRA options: see :class:`NetworkOptions` (dropout and rank dropout do not apply: the delta is merged)."""


def column_norm(weight: torch.Tensor) -> torch.Tensor:
    """Norm of each input column, shaped ``[1, in, 1...]`` to broadcast over ``weight`` (A1111's formula)."""
    extra = weight.dim() - 1
    flat = weight.transpose(0, 1).reshape(weight.shape[1], -1)
    return flat.norm(dim=1, keepdim=True).reshape(weight.shape[1], *[1] * extra).transpose(0, 1)


class DoraModule(LoraModule):
    """LoRA whose merged weight is renormalised per input column to the learned magnitudes."""

    kind = "dora"

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
        with torch.no_grad():
            magnitude = column_norm(org_module.weight.detach().float())
        self.dora_scale = nn.Parameter(magnitude.clone())

    @classmethod
    def can_wrap(cls, module: nn.Module, dim: int, fused_qkv: bool) -> bool:
        # A1111 1.10.1 computes the q/k/v deltas of SDXL's OpenCLIP attention against the whole fused
        # in_proj weight; the DoRA norm then fails on the shape and the layer is skipped.
        return not fused_qkv and super().can_wrap(module, dim, fused_qkv)

    def updown(self) -> torch.Tensor:
        weight = self.org_weight().float()
        up = self.lora_up.weight
        down = self.lora_down.weight
        delta = (up.reshape(up.shape[0], -1) @ down.reshape(down.shape[0], -1)).reshape(weight.shape)
        merged = weight + delta * self.scale()
        decomposed = merged * (self.dora_scale / column_norm(merged)) - weight
        return decomposed * self.multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super(LoraModule, self).forward(x)  # AdapterModule.forward: base + op(x, updown)

    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().kohya_tensors(), DORA_SCALE: self.dora_scale}

    def load_kohya_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        super().load_kohya_tensors(tensors)
        self._copy(self.dora_scale, tensors[DORA_SCALE], DORA_SCALE)

    def max_norm(self, max_norm: float) -> tuple[bool, float]:
        with torch.no_grad():
            return False, float(self.updown_unit().norm())


KIND = register(
    AdapterKind(
        "dora",
        DoraOptions,
        DoraModule,
        network_module="lycoris.kohya",
        algo="lora",
        network_args=(("dora_wd", "True"),),
    )
)
