"""Which U-Net layers a slider adapts, and the network over them (reference/leco-lbw.md §A2).

LECO's ``training_method`` tests the *parent* module's name, which never contains ``attn1``/``attn2``,
so its ``xattn``/``selfattn`` build zero modules (p1atdev/LECO#30) and ``noxattn`` equals ``full``.
Here each set is decided on the path of the layer *inside* its ``Transformer2DModel``
(``transformer_blocks.0.attn2.to_k``), so every set selects what its name says:

- ``full``: every Linear/1x1 conv of every transformer (kohya's LoRA; LECO ``lierla``);
- ``xattn``: cross-attention only (``attn2``: q, k, v, out);
- ``noxattn``: everything but cross-attention (proj_in/out, self-attention, feed-forward);
- ``selfattn``: self-attention only (``attn1``; concept-sliders' shipped ``noxattn``).

With ``conv_dim`` the ResNet/Downsample/Upsample layers are added whatever the set (LECO ``c3lier``).
Filtering happens here, on the targets of :mod:`lora_bakery.trainer.adapters.targets`; the file keys
stay kohya's, so A1111 and diffusers load the result like any LoRA.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..adapters import Network, adapter_kind, make_options
from ..adapters.targets import Target, unet_targets
from .config import LecoNetwork

_TRANSFORMER = "Transformer2DModel"


def transformer_paths(unet: nn.Module) -> dict[int, str]:
    """``id(layer)`` -> its path inside its transformer (``transformer_blocks.0.attn2.to_q``)."""
    paths: dict[int, str] = {}
    for _, parent in unet.named_modules():
        if type(parent).__name__ != _TRANSFORMER:
            continue
        for name, child in parent.named_modules():
            if name and isinstance(child, (nn.Linear, nn.Conv2d)):
                paths[id(child)] = name
    return paths


def in_module_set(path: str | None, module_set: str) -> bool:
    """Whether a layer with transformer-relative ``path`` (``None``: not in a transformer) belongs to ``module_set``.

    Layers outside transformers (ResNet convs) are only targets when convs are on; they are kept.
    """
    if path is None:
        return True
    parts = path.split(".")
    if module_set == "full":
        return True
    if module_set == "xattn":
        return "attn2" in parts
    if module_set == "noxattn":
        return "attn2" not in parts
    if module_set == "selfattn":
        return "attn1" in parts
    raise ValueError(f"unknown module set {module_set!r}; expected full, xattn, noxattn or selfattn")


def select_targets(views: Any, section: LecoNetwork) -> list[Target]:
    """The U-Net targets of ``section.modules`` (plus convs when ``conv_dim`` is set).

    Args:
        views (`ModelViews`): the training views.
        section (`LecoNetwork`): rank, alpha, module set, conv rank.

    Returns:
        `list[Target]`: in module order.

    Raises:
        ValueError: the set selects nothing (never silently trains an empty network).
    """
    targets = unet_targets(views.unet, views.architecture, views.configs.unet, include_conv=section.conv_dim is not None)
    paths = transformer_paths(views.unet)
    chosen = [t for t in targets if in_module_set(paths.get(id(t.module)), section.modules)]
    if not chosen:
        raise ValueError(f"network.modules {section.modules!r} selects no layer of this U-Net")
    return chosen


def build_slider_network(views: Any, section: LecoNetwork, seed: int) -> Network:
    """A kohya LoRA (LoCon when ``conv_dim`` is set) on the selected U-Net layers, no text encoder.

    Initial weights come from ``seed`` without touching the global random state (the host's
    generations keep their own randomness).

    Args:
        views (`ModelViews`): the training views.
        section (`LecoNetwork`): the network settings.
        seed (`int`): seed of the initial ``lora_down`` weights.

    Returns:
        `Network`: fp32 adapters on the U-Net's device, multiplier 1, not applied.
    """
    values: dict[str, Any] = {"dim": section.dim, "alpha": section.alpha}
    if section.conv_dim is not None:
        values["conv_dim"] = section.conv_dim
        values["conv_alpha"] = 1.0 if section.conv_alpha is None else section.conv_alpha
    options = make_options("lora", **values)
    targets = select_targets(views, section)
    device = next(views.unet.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = Network(adapter_kind("lora"), options, views.architecture, targets)
    network.set_multiplier(1.0)
    network.to(device=device, dtype=torch.float32)
    return network


__all__ = ["build_slider_network", "in_module_set", "select_targets", "transformer_paths"]
