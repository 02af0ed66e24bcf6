""""Bakery epoch" and "Bakery block preset" axes in A1111's own X/Y/Z plot script.

Registered the way ADetailer does (reference/a1111-host.md §7): find the already-loaded
``xyz_grid.py`` module in ``scripts.scripts_data`` (importing the file again would make a second
copy whose axes never show) and extend its ``axis_options`` once.

- **Bakery epoch** (values: ``1, 2, 5, final``): every ``<lora:NAME:…>`` in the prompt whose file is
  ``<run>-0000NN.safetensors`` or ``<run>.safetensors`` is swapped for that run's epoch file from the
  same folder, loaded where it is (registered under a private name).
- **Bakery block preset** (values: preset names or 12/17/20/26-value vectors separated by ``;``):
  the prompt's LoRAs get those lbw block weights, without the lbw extension.

Private names stay in the Lora extension's tables until its next rescan (Refresh), because the
XYZ script has no per-cell cleanup hook; they are ``bakery_``-prefixed and never shadow a user's LoRA.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .a1111_lora import lora_modules, preload_block_weighted, register_lora
from .base import HostError, LoraSpec
from .lora_blocks import expand_block_weights

EPOCH_AXIS = "Bakery epoch"
BLOCKS_AXIS = "Bakery block preset"
_TAG = re.compile(r"<(lora|lyco):([^:>]+)((?::[^>]*)?)>")
_EPOCH_SUFFIX = re.compile(r"-\d{6}$")


def _file_of(name: str) -> str | None:
    mods = lora_modules()
    if mods is None:
        return None
    networks = mods[0]
    entry = networks.available_network_aliases.get(name) or networks.available_networks.get(name)
    if entry is None:
        networks.list_available_networks()
        entry = networks.available_network_aliases.get(name) or networks.available_networks.get(name)
    return getattr(entry, "filename", None)


def epoch_file(path: str, epoch: str) -> str:
    """The sibling of ``path`` for ``epoch`` (a number, or ``final``/``last``)."""
    file = Path(path)
    run = _EPOCH_SUFFIX.sub("", file.stem)
    text = str(epoch).strip().lower()
    name = f"{run}.safetensors" if text in ("final", "last", "") else f"{run}-{int(float(text)):06d}.safetensors"
    target = file.with_name(name)
    if not target.is_file():
        raise HostError(f"Bakery epoch {epoch}: {target} does not exist")
    return str(target)


def _rewrite(prompt: str, swap: Any) -> str:
    def repl(m: re.Match) -> str:
        path = _file_of(m[2])
        if path is None:
            return m[0]
        return f"<{m[1]}:{swap(path)}{m[3]}>"

    return _TAG.sub(repl, prompt)


def apply_epoch(p: Any, x: Any, xs: Any) -> None:
    """XYZ ``apply``: swap every LoRA of the prompt for epoch ``x`` of its run."""
    def swap(path: str) -> str:
        name, _ = register_lora(LoraSpec(epoch_file(path, x)))
        return name

    p.prompt = _rewrite(p.prompt, swap)
    p.cached_c = [None, None]
    p.cached_uc = [None, None]


def resolve_weights(value: str, presets: Mapping[str, Sequence[float]]) -> list[float]:
    """A preset name or a 12/17/20/26-value vector (``,``/``;``/space separated) -> ratios.

    Raises:
        HostError: unknown name or bad vector.
    """
    key = str(value).strip()
    if key in presets:
        return [float(v) for v in presets[key]]
    try:
        weights = [float(v) for v in key.replace(";", " ").replace(",", " ").split()]
        expand_block_weights(weights)
    except ValueError:
        raise HostError(f"Bakery block preset {key!r}: not a preset ({', '.join(presets)}) "
                        "nor 12/17/20/26 numbers") from None
    return weights


def apply_blocks(p: Any, x: Any, xs: Any, presets: Mapping[str, Sequence[float]]) -> None:
    """XYZ ``apply``: give every LoRA of the prompt the block weights of preset/vector ``x``."""
    weights = resolve_weights(str(x), presets)

    def swap(path: str) -> str:
        spec = LoraSpec(path, block_weights=weights)
        name, entry = register_lora(spec)
        preload_block_weighted(name, entry, weights)
        return name

    p.prompt = _rewrite(p.prompt, swap)
    p.cached_c = [None, None]
    p.cached_uc = [None, None]


def xyz_module() -> Any | None:
    """The loaded ``xyz_grid.py`` script module, or ``None`` (script disabled / not loaded yet)."""
    import importlib

    scripts = importlib.import_module("modules.scripts")
    for data in getattr(scripts, "scripts_data", []):
        if getattr(data.script_class, "__module__", "") == "xyz_grid.py":
            return data.module
    return None


def register_xyz_axes(presets: Callable[[], Mapping[str, Sequence[float]]]) -> bool:
    """Add the two axes to A1111's X/Y/Z plot once (call from ``on_before_ui``).

    Args:
        presets (`Callable`): returns the block presets (name -> ratios), read on each use so edits
            in the Compare tab show up; e.g. ``lambda: compare.load_presets(path)``.

    Returns:
        `bool`: whether the axes are (now) registered.
    """
    xyz = xyz_module()
    if xyz is None:
        return False
    if any(getattr(opt, "label", None) == EPOCH_AXIS for opt in xyz.axis_options):
        return True
    def choices() -> list[str]:
        return list(presets())

    def blocks(p: Any, x: Any, xs: Any) -> None:
        apply_blocks(p, x, xs, presets())

    xyz.axis_options.extend([
        xyz.AxisOption(EPOCH_AXIS, str, apply_epoch, cost=0.5),
        xyz.AxisOption(BLOCKS_AXIS, str, blocks, choices=choices),
    ])
    return True


__all__ = ["BLOCKS_AXIS", "EPOCH_AXIS", "apply_blocks", "apply_epoch", "epoch_file", "register_xyz_axes", "resolve_weights"]
