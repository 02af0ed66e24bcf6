"""Adapter networks (LoRA, LoCon, DoRA, LoHa, LoKr, IA3, OFT, DyLoRA) over the zero-copy training views.

Public API:

- :func:`create_network` — adapters of one kind over ``ModelViews`` -> :class:`Network`
  (``apply()``/``remove()``, ``set_multiplier(te, unet)``, ``trainable_parameters(unet_lr, te_lr, block_lr_weights)``,
  ``apply_max_norm(m)``, ``kohya_state_dict()``, ``load_kohya_state_dict(tensors)``, ``metadata()``).
- :func:`make_options` / :class:`NetworkOptions` — per-kind options with field-named errors.
- :data:`ADAPTERS` / :func:`adapter_kind` — the registry (one file per kind registers itself).
- :func:`block_values` — kohya's positional per-block lists as ``{block id: value}``.
"""

from __future__ import annotations

import importlib

from .base import AdapterModule, NetworkOptions
from .network import Network, create_network
from .registry import ADAPTERS, AdapterKind, adapter_kind, make_options
from .targets import Target, block_values

KIND_MODULES = ("lora", "locon", "dora", "loha", "lokr", "ia3", "oft", "dylora")


def _load_kinds() -> None:
    """Import every kind's file once (each registers itself)."""
    for name in KIND_MODULES:
        importlib.import_module(f"{__name__}.{name}")


_load_kinds()

__all__ = [
    "ADAPTERS",
    "AdapterKind",
    "AdapterModule",
    "KIND_MODULES",
    "Network",
    "NetworkOptions",
    "Target",
    "adapter_kind",
    "block_values",
    "create_network",
    "make_options",
]
