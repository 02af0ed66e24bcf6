"""LoCon: kohya LoRA that also adapts ResNet/Downsample/Upsample convs (``conv_dim`` / ``conv_alpha``).

Same layer and file keys as :mod:`.lora` (``lora_down`` / ``lora_up`` / ``alpha``), so it is the same
``networks.lora`` module with ``conv_dim`` in ``ss_network_args``; only the defaults differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import NetworkOptions
from .lora import LoraModule
from .registry import AdapterKind, register


@dataclass
class LoconOptions(NetworkOptions):
    """LoCon options: :class:`NetworkOptions` with 3x3 convs on by default (recipes: conv 16/8)."""

    conv_dim: int | None = 16
    conv_alpha: float | None = 8.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.conv_dim is None:
            raise ValueError("conv_dim: LoCon needs a conv rank (recipes: 32 or 16, never above 64)")


KIND = register(AdapterKind("locon", LoconOptions, LoraModule, diffusers_loadable=True))
