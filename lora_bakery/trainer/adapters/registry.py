"""The one table of adapter kinds: name -> options dataclass, layer class, file identity.

Each ``<kind>.py`` calls :func:`register` once at import; :mod:`lora_bakery.trainer.adapters`
imports them all. Nothing outside a kind's own file branches on the kind's name.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .base import AdapterModule, NetworkOptions


@dataclass(frozen=True)
class AdapterKind:
    """One registered adapter kind.

    Attributes:
        name (`str`): registry name (``"lora"``, ``"locon"``, ``"loha"``...).
        options (`type[NetworkOptions]`): its options dataclass.
        layer (`type[AdapterModule]`): its layer module.
        network_module (`str`): ``ss_network_module`` written to the file (``networks.lora``, ``lycoris.kohya``).
        algo (`str`, *optional*): LyCORIS ``algo`` network arg (``loha``, ``lokr``...); ``None`` for kohya LoRA.
        diffusers_loadable (`bool`): diffusers ``load_lora_weights`` reads the file (tested in the standalone env).
        network_args (`tuple[tuple[str, str], ...]`): fixed ``ss_network_args`` entries (e.g. ``dora_wd``).
    """

    name: str
    options: type[NetworkOptions]
    layer: type[AdapterModule]
    network_module: str = "networks.lora"
    algo: str | None = None
    diffusers_loadable: bool = False
    network_args: tuple[tuple[str, str], ...] = ()


ADAPTERS: dict[str, AdapterKind] = {}


def register(kind: AdapterKind) -> AdapterKind:
    """Add ``kind`` to :data:`ADAPTERS`; a name can be registered once only."""
    if kind.name in ADAPTERS:
        raise ValueError(f"adapter kind {kind.name!r} is already registered")
    ADAPTERS[kind.name] = kind
    return kind


def adapter_kind(name: str) -> AdapterKind:
    """The registered kind called ``name`` (case-insensitive).

    Raises:
        ValueError: unknown name; the message lists the known ones.
    """
    from . import _load_kinds

    _load_kinds()
    key = name.lower()
    if key not in ADAPTERS:
        raise ValueError(f"unknown network type {name!r}; expected one of {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[key]


def make_options(name: str, **values: Any) -> NetworkOptions:
    """Build the options dataclass of kind ``name`` from keyword values, naming any unknown field.

    Raises:
        ValueError: a key that is not a field of the kind's options, or a bad value.
    """
    kind = adapter_kind(name)
    known = {f.name for f in fields(kind.options)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"{name} network has no option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    return kind.options(**values)
