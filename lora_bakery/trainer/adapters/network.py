"""A whole adapter network over the training views: build, apply/remove, parameter groups, file tensors.

The network owns one :class:`~.base.AdapterModule` per wrapped host layer, in fp32, and never writes
the host's tensors. :meth:`Network.apply` routes the host layers through the adapters;
:meth:`Network.remove` restores them exactly (same class, same ``forward``, same tensors).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .base import AdapterModule, NetworkOptions
from .registry import AdapterKind, adapter_kind
from .targets import TEXT_BLOCK, Target, text_encoder_targets, unet_targets


class Network(nn.Module):
    """Adapters of one kind on a model's U-Net and/or text encoders.

    Build it with :func:`create_network`. Attributes:

    - ``kind`` (:class:`AdapterKind`), ``options`` (:class:`NetworkOptions`), ``architecture``;
    - ``adapters`` (``nn.ModuleDict`` kohya name -> adapter), ``targets`` (name -> :class:`Target`);
    - ``skipped`` (names of layers this kind cannot adapt in a way A1111 reads back).
    """

    def __init__(
        self, kind: AdapterKind, options: NetworkOptions, architecture: str, targets: list[Target]
    ) -> None:
        super().__init__()
        self.kind = kind
        self.options = options
        self.architecture = architecture
        self.adapters = nn.ModuleDict()
        self.targets: dict[str, Target] = {}
        self.skipped: list[str] = []
        for target in targets:
            dim, alpha = options.rank_for(
                None if target.text_encoder is not None else target.block, target.conv3x3
            )
            if dim <= 0:
                continue
            if not kind.layer.can_wrap(target.module, dim, target.fused_qkv):
                self.skipped.append(target.name)
                continue
            self.adapters[target.name] = kind.layer(target.name, target.module, dim, alpha, options)
            self.targets[target.name] = target
        self._applied = False

    # -- applying -------------------------------------------------------------------------------
    @property
    def applied(self) -> bool:
        return self._applied

    def apply(self) -> None:
        """Route every wrapped host layer through its adapter (idempotent)."""
        for adapter in self.adapters.values():
            adapter.apply_to()
        self._applied = True

    def remove(self) -> None:
        """Give every host layer its own ``forward`` back; the host model is as before :meth:`apply`."""
        for adapter in self.adapters.values():
            adapter.restore()
        self._applied = False

    @contextlib.contextmanager
    def applied_to_model(self) -> Iterator[Network]:
        """``with network.applied_to_model():`` apply, then always remove."""
        self.apply()
        try:
            yield self
        finally:
            self.remove()

    def set_multiplier(self, text_encoder: float = 1.0, unet: float | None = None) -> None:
        """Output strength, split like A1111's ``<lora:name:te:unet>`` (``unet`` defaults to ``text_encoder``).

        Args:
            text_encoder (`float`, defaults to 1.0): multiplier of text-encoder layers (LECO uses ±1).
            unet (`float`, *optional*): multiplier of U-Net layers.
        """
        unet = text_encoder if unet is None else unet
        for name, adapter in self.adapters.items():
            adapter.multiplier = float(text_encoder if self.targets[name].text_encoder is not None else unet)

    # -- training -------------------------------------------------------------------------------
    def trainable_parameters(
        self,
        unet_lr: float | None,
        text_encoder_lr: float | None,
        block_lr_weights: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """Optimizer parameter groups: text encoders at ``text_encoder_lr``, U-Net blocks at ``unet_lr x weight``.

        As kohya: a group whose learning rate is 0 is left out (its layers stay at their initial
        values but are still saved); ``None`` leaves the ``lr`` key out so the optimizer default applies.

        Args:
            unet_lr (`float`, *optional*): U-Net learning rate.
            text_encoder_lr (`float`, *optional*): text encoder learning rate (shared by SDXL's two).
            block_lr_weights (`Mapping[str, float]`, *optional*): block id -> weight for U-Net layers
                (see :func:`~.targets.block_values`); blocks not named get weight 1.

        Returns:
            `list[dict]`: ``{"params": [...], "lr": ..., "name": "text_encoder" | "unet" | "unet_IN01"}``.
        """
        groups: dict[str, dict[str, Any]] = {}
        for name, adapter in self.adapters.items():
            target = self.targets[name]
            params = [p for p in adapter.parameters() if p.requires_grad]
            if target.text_encoder is not None:
                key, lr = "text_encoder", text_encoder_lr
            elif block_lr_weights:
                weight = float(block_lr_weights.get(target.block, 1.0))
                key = f"unet_{target.block}" if weight != 1.0 else "unet"
                lr = None if unet_lr is None else unet_lr * weight
            else:
                key, lr = "unet", unet_lr
            group = groups.setdefault(key, {"params": [], "name": key, "lr": lr})
            group["params"].extend(params)
        result = []
        for group in groups.values():
            if group["lr"] == 0:
                continue
            if group["lr"] is None:
                del group["lr"]
            result.append(group)
        return result

    def apply_max_norm(self, max_norm: float) -> tuple[int, float, float]:
        """kohya ``scale_weight_norms``: cap every layer's delta norm at ``max_norm`` (after each step).

        Returns:
            `tuple[int, float, float]`: layers scaled, mean norm and max norm afterwards.
        """
        norms = []
        scaled = 0
        for adapter in self.adapters.values():
            changed, norm = adapter.max_norm(max_norm)
            scaled += changed
            norms.append(norm)
        if not norms:
            return 0, 0.0, 0.0
        return scaled, sum(norms) / len(norms), max(norms)

    # -- file tensors ---------------------------------------------------------------------------
    def kohya_state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor under its file key (``<name>.<suffix>``), detached, as trained (fp32).

        Returns:
            `dict[str, torch.Tensor]`: e.g. ``lora_unet_..._to_q.lora_down.weight``, ``....alpha``.
        """
        tensors = {}
        for name, adapter in self.adapters.items():
            for suffix, tensor in adapter.kohya_tensors().items():
                tensors[f"{name}.{suffix}"] = tensor.detach()
        return tensors

    def load_kohya_state_dict(self, tensors: Mapping[str, torch.Tensor], strict: bool = True) -> list[str]:
        """Load file tensors (e.g. from :func:`lora_bakery.trainer.saving.load_network`) into the adapters.

        Args:
            tensors (`Mapping[str, torch.Tensor]`): file key -> tensor.
            strict (`bool`, defaults to `True`): raise when a layer is missing on either side.

        Returns:
            `list[str]`: layer names of the network the file has no tensors for (empty when strict).

        Raises:
            ValueError: strict mismatch or a shape that does not fit.
        """
        by_layer: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            name, _, suffix = key.partition(".")
            by_layer.setdefault(name, {})[suffix] = tensor
        unknown = sorted(set(by_layer) - set(self.adapters))
        missing = sorted(set(self.adapters) - set(by_layer))
        if strict and (unknown or missing):
            raise ValueError(
                f"file does not match this {self.kind.name} network: {len(unknown)} unknown layers "
                f"(e.g. {unknown[:3]}), {len(missing)} missing (e.g. {missing[:3]})"
            )
        for name, layer_tensors in by_layer.items():
            if name in self.adapters:
                self.adapters[name].load_kohya_tensors(layer_tensors)
        return missing

    def metadata(self) -> dict[str, str]:
        """The network part of kohya's metadata: ``ss_network_module``/``_dim``/``_alpha``/``_dropout``/``_args``."""
        import json

        args = self.options.network_args()
        if self.kind.algo is not None:
            args = {"algo": self.kind.algo, **args}
        args.update(dict(self.kind.network_args))
        out = {
            "ss_network_module": self.kind.network_module,
            "ss_network_dim": str(self.options.dim),
            "ss_network_alpha": str(float(self.options.alpha)),
            "ss_network_dropout": str(self.options.dropout),
        }
        if args:  # kohya writes the key only when there are network args (JSON), never "None"
            out["ss_network_args"] = json.dumps(args)
        return out

    def count(self, text_encoder: bool | None = None) -> int:
        """How many layers are adapted (``text_encoder`` True/False filters)."""
        if text_encoder is None:
            return len(self.adapters)
        return sum((t.text_encoder is not None) == text_encoder for t in self.targets.values())


def create_network(
    views: Any,
    kind: str = "lora",
    options: NetworkOptions | None = None,
    *,
    train_unet: bool = True,
    train_text_encoder: bool = True,
    multiplier: float = 1.0,
) -> Network:
    """Build an adapter network over a model's training views (not applied yet).

    Args:
        views (`ModelViews`): from :func:`lora_bakery.trainer.models.build_views` (``architecture``,
            ``unet``, ``text_encoders``, ``configs.unet`` are read).
        kind (`str`, defaults to ``"lora"``): a registered kind (``lora``, ``locon``, ``dora``, ``loha``,
            ``lokr``, ``ia3``, ``oft``).
        options (`NetworkOptions`, *optional*): the kind's options (defaults when omitted); build
            them with :func:`~.registry.make_options` to get field-named errors.
        train_unet (`bool`, defaults to `True`): adapt the U-Net.
        train_text_encoder (`bool`, defaults to `True`): adapt the text encoder(s); kohya's
            ``network_train_unet_only`` leaves them out of the file entirely.
        multiplier (`float`, defaults to 1.0): initial output strength.

    Returns:
        `Network`: fp32 adapters on the CPU; move with ``network.to(device)``.
    """
    spec = adapter_kind(kind)
    options = options if options is not None else spec.options()
    if not isinstance(options, spec.options):
        raise TypeError(f"{kind} needs {spec.options.__name__}, got {type(options).__name__}")
    targets: list[Target] = []
    if train_text_encoder:
        targets += text_encoder_targets(views.text_encoders, views.architecture)
    if train_unet:
        targets += unet_targets(
            views.unet, views.architecture, views.configs.unet, include_conv=options.conv_dim is not None
        )
    from ..models.views import CONSTRUCTION_LOCK

    device = next(views.unet.parameters()).device
    with CONSTRUCTION_LOCK:  # never while another thread builds views on the meta device
        network = Network(spec, options, views.architecture, targets)
    network.set_multiplier(multiplier)
    network.to(device=device, dtype=torch.float32)
    return network


def adapter_of(network: Network, name: str) -> AdapterModule:
    """The adapter for kohya layer ``name`` (``KeyError`` naming it when absent)."""
    if name not in network.adapters:
        raise KeyError(f"no adapter named {name!r} in this network")
    return network.adapters[name]


__all__ = ["TEXT_BLOCK", "Network", "adapter_of", "create_network"]
