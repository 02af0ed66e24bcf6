"""LoKr (LyCORIS ``algo=lokr``): Kronecker product of a small full matrix and a low-rank one.

``delta = kron(w1, w2_a @ w2_b) * alpha / dim``, reshaped to the layer's weight. ``out = a*b`` and
``in = c*d`` are split by :func:`factorization` (copied from LyCORIS ``lokr.py`` / A1111
``lyco_helpers.py``); ``w1`` is ``[a, c]``, ``w2_a`` ``[b, r]``, ``w2_b`` ``[r, d*kh*kw]``.
File keys: ``lokr_w1``, ``lokr_w2_a``, ``lokr_w2_b``, ``alpha``. A1111 1.10.1 ``network_lokr.py``
reads ``dim = lokr_w2_b.shape[0]`` and scales by ``alpha / dim``.

Init: w1 and w2_a Kaiming-uniform, w2_b zero (zero delta, non-zero gradient for w2_b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .base import AdapterModule, NetworkOptions, ParameterKeysMixin
from .registry import AdapterKind, register

KEYS = ("lokr_w1", "lokr_w2_a", "lokr_w2_b")


@dataclass
class LokrOptions(NetworkOptions):
    """LoKr options.

    Attributes:
        factor (`int`, defaults to -1): target size of the small Kronecker factor (-1: as square as possible).
    """

    factor: int = -1

    def network_args(self) -> dict[str, str]:
        return {**super().network_args(), "factor": str(self.factor)}


# Copied from A1111 extensions-builtin/Lora/lyco_helpers.py (itself from LyCORIS lycoris/modules/lokr.py).
def factorization(dimension: int, factor: int = -1) -> tuple[int, int]:
    """Split ``dimension`` into ``(m, n)``, ``m <= n``, ``m`` closest to ``factor`` (``-1``: most square)."""
    if factor > 0 and (dimension % factor) == 0:
        m, n = factor, dimension // factor
        return (n, m) if m > n else (m, n)
    if factor < 0:
        factor = dimension
    m, n = 1, dimension
    length = m + n
    while m < n:
        new_m = m + 1
        while dimension % new_m != 0:
            new_m += 1
        new_n = dimension // new_m
        if new_m + new_n > length or new_m > factor:
            break
        m, n = new_m, new_n
    return (n, m) if m > n else (m, n)


class LokrModule(ParameterKeysMixin, AdapterModule):
    """A LyCORIS LoKr layer (full ``w1``, low-rank ``w2``) on a Linear or Conv2d."""

    kind = "lokr"
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
        factor = getattr(options, "factor", -1)
        shape = org_module.weight.shape
        out_a, out_b = factorization(shape[0], factor)
        in_c, in_d = factorization(shape[1], factor)
        kernel = int(torch.tensor(shape[2:]).prod()) if len(shape) > 2 else 1
        self.lokr_w1 = nn.Parameter(torch.empty(out_a, in_c))
        self.lokr_w2_a = nn.Parameter(torch.empty(out_b, dim))
        self.lokr_w2_b = nn.Parameter(torch.empty(dim, in_d * kernel))
        nn.init.kaiming_uniform_(self.lokr_w1, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.lokr_w2_a, a=math.sqrt(5))
        nn.init.zeros_(self.lokr_w2_b)

    def updown(self) -> torch.Tensor:
        w2 = self.lokr_w2_a @ self.lokr_w2_b
        delta = torch.kron(self.lokr_w1, w2)
        return delta.reshape(self.org_module.weight.shape) * (self.scale() * self.multiplier)


KIND = register(AdapterKind("lokr", LokrOptions, LokrModule, network_module="lycoris.kohya", algo="lokr"))
