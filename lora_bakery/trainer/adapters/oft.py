"""OFT, block-diagonal ("Diag-OFT"), in kohya's constrained layout (sd-scripts ``networks/oft.py``).

Each layer learns ``dim`` blocks ``B_k`` of size ``out/dim``. A1111 1.10.1 ``network_oft.py`` (kohya
branch, key ``oft_blocks``) rebuilds an orthogonal rotation per block by the Cayley transform::

    Q = B - B^T;  Q *= min(|Q|, alpha * out) / |Q|      (COFT norm constraint, |.| over all blocks)
    R_k = (I + Q_k) (I - Q_k)^-1
    W'[k-th row block] = R_k^T W[k-th row block]
    updown = (W' - W) * multiplier

File keys: ``oft_blocks`` [dim, out/dim, out/dim], ``alpha`` (the constraint factor). Blocks start
at zero (R = I). The LyCORIS ``oft_diag`` key is not written: A1111 1.10.1 uses it as the rotation
itself while LyCORIS stores the skew parameter there, so the two disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .base import AdapterModule, NetworkOptions, alpha_tensor
from .registry import AdapterKind, register

BLOCKS = "oft_blocks"


@dataclass
class OftOptions(NetworkOptions):
    """OFT options: ``dim`` = number of blocks per layer (must divide the output width), ``alpha`` = constraint.

    Defaults follow kohya (``network_alpha`` 1: constraint ``out`` per layer, effectively free).
    """

    dim: int = 4
    alpha: float = 1.0


class OftModule(AdapterModule):
    """Orthogonal block-diagonal rotation of a layer's output rows."""

    kind = "oft"

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
        out_dim = org_module.weight.shape[0]
        self.block_size = out_dim // dim
        self.constraint = alpha * out_dim
        self.oft_blocks = nn.Parameter(torch.zeros(dim, self.block_size, self.block_size))

    @classmethod
    def can_wrap(cls, module: nn.Module, dim: int, fused_qkv: bool) -> bool:
        return (
            isinstance(module, (nn.Linear, nn.Conv2d)) and not fused_qkv and module.weight.shape[0] % dim == 0
        )

    def scale(self) -> float:
        return 1.0

    def rotation(self) -> torch.Tensor:
        """The per-block rotations ``R_k`` [dim, n, n] (Cayley transform of the constrained skew part)."""
        q = self.oft_blocks - self.oft_blocks.transpose(1, 2)
        norm = torch.norm(q.flatten())
        q = q * ((torch.clamp(norm, max=self.constraint) + 1e-8) / (norm + 1e-8))
        eye = torch.eye(self.block_size, device=q.device, dtype=q.dtype)
        return torch.matmul(eye + q, torch.linalg.inv(eye - q))

    def updown(self) -> torch.Tensor:
        weight = self.org_weight().float()
        blocks = weight.reshape(self.dim, self.block_size, *weight.shape[1:])
        rotated = torch.einsum("knm,kn...->km...", self.rotation(), blocks).reshape(weight.shape)
        return (rotated - weight) * self.multiplier

    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        return {BLOCKS: self.oft_blocks, "alpha": alpha_tensor(self.alpha_value)}

    def load_kohya_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        self._copy(self.oft_blocks, tensors[BLOCKS], BLOCKS)
        if "alpha" in tensors:
            self.alpha_value = float(tensors["alpha"])
            self.constraint = self.alpha_value * self.org_module.weight.shape[0]


KIND = register(AdapterKind("oft", OftOptions, OftModule, network_module="networks.oft"))
