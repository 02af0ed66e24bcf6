"""The built-in Lora extension, as ``A1111Host`` uses it (reference/a1111-host.md §6).

Generation applies a LoRA file that lives anywhere by entering it in the extension's tables under
a private name and writing ``<lora:name:te[:unet]>`` into the prompt; exclusive use and the end of
a generation put the original weights back eagerly, because the extension only restores them
lazily in the next forward of each patched layer, and our trainer computes through its own modules.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .base import HostError, LoraSpec

NO_LORA_EXT = (
    "The built-in Lora extension is not loaded, so LoRAs cannot be applied to generations. "
    "Enable 'Lora' in Extensions → Installed and reload the UI."
)


def lora_modules() -> tuple[Any, Any] | None:
    """The Lora extension's ``networks`` and ``network`` modules, or ``None`` when it is disabled.

    A1111 imports extension scripts with the extension folder on ``sys.path`` only while loading,
    so its modules are found in ``sys.modules`` afterwards (importing is the fallback).
    """
    mods = []
    for name, attr in (("networks", "available_networks"), ("network", "NetworkOnDisk")):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = importlib.import_module(name)
            except ImportError:
                return None
        if not hasattr(mod, attr):  # someone else's module of that name
            return None
        mods.append(mod)
    return mods[0], mods[1]


def lora_tag(name: str, spec: LoraSpec) -> str:
    """``<lora:name:te>`` or ``<lora:name:te:unet>`` (the extension's positional prompt syntax)."""
    te = f"{float(spec.te):.6g}"
    if spec.unet is None:
        return f"<lora:{name}:{te}>"
    return f"<lora:{name}:{te}:{float(spec.unet):.6g}>"


def register_lora(spec: LoraSpec) -> tuple[str, Any]:
    """Make ``spec.path`` known to the Lora extension under a private, unique name.

    The file stays where it is. It is entered in ``available_networks`` and, under the same name
    only, ``available_network_aliases`` (as ``list_available_networks`` would), so it can never
    shadow the user's LoRAs or their ``ss_output_name`` aliases.

    Args:
        spec (`LoraSpec`): the file (``te``/``unet`` are used by ``lora_tag``).

    Returns:
        `tuple[str, NetworkOnDisk]`: the name to put in the prompt and the table entry.

    Raises:
        `HostError`: the extension is disabled or the file does not exist.
    """
    mods = lora_modules()
    if mods is None:
        raise HostError(NO_LORA_EXT)
    networks, network = mods
    path = os.path.abspath(spec.path)
    if not os.path.isfile(path):
        raise HostError(f"LoRA file not found: {path}")
    stem = re.sub(r"[^0-9A-Za-z_.-]", "_", Path(path).stem)[:48]
    ident = path if spec.block_weights is None else path + "|" + ",".join(f"{float(w):.6g}" for w in spec.block_weights)
    name = f"bakery_{stem}_{hashlib.sha1(ident.encode('utf-8')).hexdigest()[:8]}"
    entry = network.NetworkOnDisk(name, path)
    networks.available_networks[name] = entry
    networks.available_network_aliases[name] = entry
    return name, entry


def unregister_loras(registered: Mapping[str, Any]) -> None:
    """Remove entries made by ``register_lora`` (unless a rescan already replaced them)."""
    mods = lora_modules()
    if mods is None:
        return
    for name, entry in registered.items():
        for table in (mods[0].available_networks, mods[0].available_network_aliases):
            if table.get(name) is entry:
                del table[name]


def clear_networks(sd_model: Any) -> int:
    """Unload the extension's networks and put the original weights back now.

    Clears ``loaded_networks`` and restores each layer that has a LoRA merged in with the
    extension's own ``network_restore_weights_from_backup`` (in place, so the Parameter objects
    and their storage stay the same), then marks the layer clean.

    Args:
        sd_model (`torch.nn.Module`): ``shared.sd_model``.

    Returns:
        `int`: how many layers had LoRA weights merged in (0 when the extension is disabled).
    """
    mods = lora_modules()
    if mods is None:
        return 0
    import torch

    networks = mods[0]
    networks.loaded_networks.clear()
    restored = 0
    with torch.no_grad():  # the live UNet's weights require grad: in-place copies need no_grad
        for module in sd_model.modules():
            if getattr(module, "network_current_names", ()):
                networks.network_restore_weights_from_backup(module)
                module.network_current_names = ()
                restored += 1
    return restored


# lbw ``LORAANDSOON``: the attribute of each A1111 network module type that a block ratio multiplies.
_MODULE_FACTORS = ("w1a", "w1", "w", "weight")


def _scale_module(module: Any, ratio: float) -> None:
    """Multiply one loaded ``NetworkModule``'s linear factor by ``ratio`` (as lbw's ``lbw()`` does)."""
    import torch

    up = getattr(module, "up_model", None)
    with torch.no_grad():
        if up is not None:  # NetworkModuleLora (LoRA, LoCon, DoRA)
            up.weight.mul_(ratio)
            return
        if type(module).__name__ == "NetworkModuleOFT" or hasattr(module, "oft_blocks"):
            raise HostError("Per-block weights cannot be applied to OFT networks (no linear factor).")
        for attr in _MODULE_FACTORS:
            value = getattr(module, attr, None)
            if isinstance(value, torch.Tensor):
                setattr(module, attr, value * ratio)
                return
    raise HostError(f"Per-block weights: unsupported network module type {type(module).__name__}.")


def preload_block_weighted(name: str, entry: Any, block_weights: Any) -> Any:
    """Load a registered file now, scale each module by its lbw block ratio, and leave it in the
    extension's memory cache so ``load_networks`` uses this copy for the generation.

    ``load_networks`` takes a network from ``networks_in_memory`` unless the file is newer than
    the copy, so no hook into the sampling loop is needed (lbw instead re-scales in
    ``after_extra_networks_activate``). The caller removes the entry with :func:`forget_networks`.

    Args:
        name (`str`): the private name from :func:`register_lora`.
        entry (`NetworkOnDisk`): its table entry.
        block_weights (`Sequence[float]`): 12/17/20/26 lbw ratios (BASE = text encoder modules).

    Returns:
        `Network`: the scaled network (also in ``networks.networks_in_memory[name]``).

    Raises:
        `HostError`: the extension is disabled, a bad vector length, or an OFT network.
    """
    from .lora_blocks import expand_block_weights, layer_ratio

    mods = lora_modules()
    if mods is None:
        raise HostError(NO_LORA_EXT)
    networks = mods[0]
    try:
        weights26 = expand_block_weights(list(block_weights))
    except ValueError as exc:
        raise HostError(str(exc)) from exc
    net = networks.load_network(name, entry)
    for key, module in net.modules.items():
        ratio = layer_ratio(key, weights26)
        if ratio != 1.0:
            _scale_module(module, ratio)
    networks.networks_in_memory.pop(name, None)
    networks.networks_in_memory[name] = net
    return net


def forget_networks(names: Any) -> None:
    """Drop our private networks from the extension's memory cache (block-scaled copies must not linger)."""
    mods = lora_modules()
    if mods is None:
        return
    for name in names:
        mods[0].networks_in_memory.pop(name, None)
