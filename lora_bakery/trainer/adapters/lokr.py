"""LoKr (LyCORIS ``algo=lokr``): Kronecker product of a small full matrix and a low-rank (or full) one.

``delta = kron(w1, w2_a @ w2_b) * alpha / dim``, reshaped to the layer's weight. ``out = a*b`` and
``in = c*d`` are split by :func:`factorization` (copied from LyCORIS ``lokr.py`` / A1111
``lyco_helpers.py``); ``w1`` is ``[a, c]``, ``w2_a`` ``[b, r]``, ``w2_b`` ``[r, d*kh*kw]``.
File keys: ``lokr_w1``, ``lokr_w2_a``, ``lokr_w2_b``, ``alpha``. A1111 1.10.1 ``network_lokr.py``
reads ``dim = lokr_w2_b.shape[0]`` and scales by ``alpha / dim``.

Where the rank is at least half of ``w2``'s larger side (``dim >= max(b, d) / 2``) a low-rank
``w2`` saves nothing, and LyCORIS (which trains these files in kohya) stores ``w2`` whole instead:
``lokr_w2`` ``[b, d]`` (``[b, d, kh, kw]`` for convs), scale 1 (its ``alpha`` is ``dim``; A1111 has
no rank to divide by then and uses 1 too). The layout follows the same rule here, so LyCORIS's
kohya entry point (``lycoris.kohya.create_network_from_weights``, which builds each module by
that rule before copying the file's tensors in) loads our files, and we load its files. With
dim 16 that is most SD1.5 layers (768 = 24x32, 320 = 16x20 split).

Init: w1 and w2_a Kaiming-uniform, w2_b (or the whole w2) zero: zero delta, non-zero gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .base import AdapterModule, NetworkOptions, ParameterKeysMixin
from .registry import AdapterKind, register

KEYS = ("lokr_w1", "lokr_w2_a", "lokr_w2_b")
FULL_KEYS = ("lokr_w1", "lokr_w2")


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
    """A LyCORIS LoKr layer (full ``w1``; low-rank ``w2``, or full where LyCORIS makes it full) on a Linear or Conv2d."""

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
        nn.init.kaiming_uniform_(self.lokr_w1, a=math.sqrt(5))
        self.full_w2 = dim >= max(out_b, in_d) / 2  # LyCORIS's rule (module docstring)
        if self.full_w2:
            self.tensor_keys = FULL_KEYS
            self.alpha_value = float(dim)  # what LyCORIS writes; the scale is 1 whatever the file says
            self.lokr_w2 = nn.Parameter(torch.zeros(out_b, in_d, *shape[2:]))
        else:
            self.lokr_w2_a = nn.Parameter(torch.empty(out_b, dim))
            self.lokr_w2_b = nn.Parameter(torch.empty(dim, in_d * kernel))
            nn.init.kaiming_uniform_(self.lokr_w2_a, a=math.sqrt(5))
            nn.init.zeros_(self.lokr_w2_b)

    def scale(self) -> float:
        return 1.0 if self.full_w2 else super().scale()

    def updown(self) -> torch.Tensor:
        w1 = self.lokr_w1
        if self.full_w2:
            w2 = self.lokr_w2
            if w2.dim() == 4:  # conv: kron over [a, c, 1, 1] x [b, d, kh, kw], as LyCORIS and A1111 do
                w1 = w1[:, :, None, None]
        else:
            w2 = self.lokr_w2_a @ self.lokr_w2_b
        delta = torch.kron(w1, w2)
        return delta.reshape(self.org_module.weight.shape) * (self.scale() * self.multiplier)


KIND = register(AdapterKind("lokr", LokrOptions, LokrModule, network_module="lycoris.kohya", algo="lokr"))
