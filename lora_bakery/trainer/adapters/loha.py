"""LoHa (LyCORIS ``algo=loha``): Hadamard product of two low-rank products.

``delta = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha / dim``, reshaped to the layer's weight shape.
File keys: ``hada_w1_a`` [out, r], ``hada_w1_b`` [r, in*kh*kw], ``hada_w2_a``, ``hada_w2_b``, ``alpha``.
A1111 1.10.1 ``network_hada.py``: ``dim = hada_w1_b.shape[0]``, ``rebuild_conventional`` for each
pair, product, then ``finalize_updown`` (reshape to the weight, x alpha/dim, x multiplier).

Init as LyCORIS ``LohaModule``: w1_b, w2_b ~ N(0, 1), w1_a ~ N(0, 0.1), w2_a = 0 (zero delta).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .base import AdapterModule, NetworkOptions, ParameterKeysMixin
from .registry import AdapterKind, register

KEYS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")


@dataclass
class LohaOptions(NetworkOptions):
    """LoHa options: see :class:`NetworkOptions` (recipes: 32/16 or less)."""


class LohaModule(ParameterKeysMixin, AdapterModule):
    """A LyCORIS LoHa layer (no CP decomposition) on a Linear or Conv2d."""

    kind = "loha"
    tensor_keys = KEYS

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
        shape = org_module.weight.shape
        out_dim, in_dim = shape[0], int(torch.tensor(shape[1:]).prod())
        self.hada_w1_a = nn.Parameter(torch.empty(out_dim, dim))
        self.hada_w1_b = nn.Parameter(torch.empty(dim, in_dim))
        self.hada_w2_a = nn.Parameter(torch.empty(out_dim, dim))
        self.hada_w2_b = nn.Parameter(torch.empty(dim, in_dim))
        nn.init.normal_(self.hada_w1_b, std=1.0)
        nn.init.normal_(self.hada_w1_a, std=0.1)
        nn.init.normal_(self.hada_w2_b, std=1.0)
        nn.init.zeros_(self.hada_w2_a)

    def updown(self) -> torch.Tensor:
        delta = (self.hada_w1_a @ self.hada_w1_b) * (self.hada_w2_a @ self.hada_w2_b)
        return delta.reshape(self.org_module.weight.shape) * (self.scale() * self.multiplier)


KIND = register(AdapterKind("loha", LohaOptions, LohaModule, network_module="lycoris.kohya", algo="loha"))
