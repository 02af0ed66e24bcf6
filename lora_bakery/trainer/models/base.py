"""Types shared by the model families and the view builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from .keys import KeyEntry


@dataclass
class ModelConfigs:
    """Everything needed to build empty diffusers/transformers modules for one checkpoint.

    Attributes:
        architecture (`str`): ``"sd1"`` or ``"sdxl"`` (``"sd2"`` can be detected, not built yet).
        unet (`dict`): ``UNet2DConditionModel`` kwargs.
        vae (`dict`): ``AutoencoderKL`` kwargs.
        text_encoders (`list[dict]`): ``CLIPTextConfig`` kwargs, one per text encoder.
    """

    architecture: str
    unet: dict[str, Any]
    vae: dict[str, Any]
    text_encoders: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ViewReport:
    """What building the views cost.

    Attributes:
        total (`int`): parameters in the views.
        shared (`int`): of those, how many share storage with a host tensor.
        extra_bytes (`int`): bytes newly allocated for weights while building (only copies of inference tensors).
        buffer_bytes (`int`): bytes of non-weight buffers the modules create themselves (``position_ids``).
        copied (`list[str]`): host keys that had to be copied (inference tensors), normally empty.
        messages (`list[str]`): human-readable notes, e.g. why something was copied.
    """

    total: int = 0
    shared: int = 0
    extra_bytes: int = 0
    buffer_bytes: int = 0
    copied: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class ModelViews:
    """Diffusers/transformers modules whose weights are the host's own tensors (frozen, eval mode).

    Keep them frozen and leave dtype/device alone: ``requires_grad_(True)`` would train the host's
    weights, and ``.to()`` / ``.half()`` would allocate new tensors (sharing lost; the host is not touched).

    Attributes:
        architecture (`str`): ``"sd1"`` or ``"sdxl"``.
        unet (`UNet2DConditionModel`): the denoiser.
        vae (`AutoencoderKL`): the autoencoder.
        text_encoders (`list`): ``[CLIPTextModel]`` for SD1, ``[CLIPTextModel, CLIPTextModelWithProjection]`` for SDXL.
        configs (`ModelConfigs`): the configs the modules were built from.
        report (`ViewReport`): sharing and copy statistics.
    """

    architecture: str
    unet: Any
    vae: Any
    text_encoders: list[Any]
    configs: ModelConfigs
    report: ViewReport


@dataclass(frozen=True)
class Component:
    """One module of a family: how to build it empty and where each parameter lives in the checkpoint.

    Attributes:
        name (`str`): ``"unet"``, ``"vae"``, ``"text_encoder"``, ``"text_encoder_2"``.
        build (`Callable[[], torch.nn.Module]`): builds the module (the caller picks meta or real weights).
        entry (`Callable[[str], KeyEntry]`): module parameter name -> :class:`KeyEntry`.
    """

    name: str
    build: Callable[[], torch.nn.Module]
    entry: Callable[[str], KeyEntry]


@dataclass(frozen=True)
class Family:
    """A model family's entry in the dispatch table (``lora_bakery.trainer.models.FAMILIES``).

    Attributes:
        architecture (`str`): ``"sd1"``, ``"sdxl"``...
        infer_configs (`Callable`): checkpoint tensors -> :class:`ModelConfigs`.
        components (`Callable`): :class:`ModelConfigs` -> ``[unet, vae, text encoders...]`` components.
    """

    architecture: str
    infer_configs: Callable[[Mapping[str, torch.Tensor]], ModelConfigs]
    components: Callable[[ModelConfigs], list[Component]]
