"""What every adapter kind shares: options, the wrapped-layer base class, and A1111's delta arithmetic.

An adapter never writes the host's weights. It replaces the wrapped module's ``forward`` on the
instance (as kohya's ``LoRAModule.apply_to`` does) and :meth:`AdapterModule.restore` deletes that
instance attribute again, so the host module is exactly what it was: same tensors, same class.

Every kind defines :meth:`AdapterModule.updown`: the weight delta AUTOMATIC1111's built-in Lora
extension adds to the layer when it loads the saved file (``extensions-builtin/Lora/network*.py``,
v1.10.1: ``calc_updown`` then ``finalize_updown``: x ``calc_scale()``, DoRA, x multiplier). Kinds
whose output is not a plain low-rank product compute their forward from that very delta, so what
we train is what A1111 shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class NetworkOptions:
    """Options shared by every adapter kind (kohya ``--network_dim`` / ``--network_alpha`` / ``--network_args``).

    Attributes:
        dim (`int`, defaults to 16): rank for Linear and 1x1 conv layers.
        alpha (`float`, defaults to 8.0): scale numerator; the delta is multiplied by ``alpha / dim``.
        conv_dim (`int`, *optional*): rank for 3x3 convs; ``None`` leaves ResNet/Down/Upsample blocks alone (plain LoRA).
        conv_alpha (`float`, *optional*): alpha for 3x3 convs; ``None`` means 1.0 as in kohya.
        dropout (`float`, *optional*): dropout on the down projection's output (kohya ``network_dropout``).
        rank_dropout (`float`, *optional*): drops whole ranks per sample, rescaling by ``1/(1-p)``.
        module_dropout (`float`, *optional*): skips a whole module for a step with this probability.
        block_dims (`dict[str, int]`, *optional*): per-block rank for Linear/1x1 layers, by block id
            (``"IN01"``, ``"M00"``, ``"OUT05"``; see :func:`..targets.block_id`); 0 leaves the block out.
        block_alphas (`dict[str, float]`, *optional*): per-block alpha.
        conv_block_dims (`dict[str, int]`, *optional*): per-block rank for 3x3 convs.
        conv_block_alphas (`dict[str, float]`, *optional*): per-block alpha for 3x3 convs.
    """

    dim: int = 16
    alpha: float = 8.0
    conv_dim: int | None = None
    conv_alpha: float | None = None
    dropout: float | None = None
    rank_dropout: float | None = None
    module_dropout: float | None = None
    block_dims: dict[str, int] | None = None
    block_alphas: dict[str, float] | None = None
    conv_block_dims: dict[str, int] | None = None
    conv_block_alphas: dict[str, float] | None = None
    extra_args: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim must be at least 1, got {self.dim}")
        if self.conv_dim is not None and self.conv_dim < 1:
            raise ValueError(f"conv_dim must be at least 1 or None, got {self.conv_dim}")
        for name in ("dropout", "rank_dropout", "module_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")

    def rank_for(self, block: str | None, conv3x3: bool) -> tuple[int, float]:
        """The (rank, alpha) of one layer: block overrides first, then the global values (0 = skip)."""
        if conv3x3:
            if self.conv_dim is None:
                return 0, 0.0
            dim = (self.conv_block_dims or {}).get(block or "", self.conv_dim)
            default_alpha = 1.0 if self.conv_alpha is None else self.conv_alpha
            alpha = (self.conv_block_alphas or {}).get(block or "", default_alpha)
            return int(dim), float(alpha)
        dim = (self.block_dims or {}).get(block or "", self.dim)
        alpha = (self.block_alphas or {}).get(block or "", self.alpha)
        return int(dim), float(alpha)

    def network_args(self) -> dict[str, str]:
        """kohya's ``ss_network_args``: the ``--network_args`` given as strings (only what is set)."""
        args: dict[str, str] = {}
        if self.conv_dim is not None:
            args["conv_dim"] = str(self.conv_dim)
            args["conv_alpha"] = str(1.0 if self.conv_alpha is None else self.conv_alpha)
        for name in ("rank_dropout", "module_dropout"):
            if getattr(self, name) is not None:
                args[name] = str(getattr(self, name))
        for name in ("block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas"):
            value = getattr(self, name)
            if value:
                args[name] = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        args.update(self.extra_args)
        return args


def autocast_enabled(device_type: str) -> bool:
    """Whether autocast is on for ``device_type`` now (``torch.is_autocast_enabled(device)`` needs torch 2.4)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: one flag for CUDA, one for the CPU
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def is_conv(module: nn.Module) -> bool:
    return isinstance(module, nn.Conv2d)


def layer_op(module: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``module``'s own operation (linear, or conv with its stride/padding) with another weight and no bias."""
    if isinstance(module, nn.Conv2d):
        return F.conv2d(x, weight, None, module.stride, module.padding, module.dilation, module.groups)
    return F.linear(x, weight)


def adapter_input(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` for the adapter's own (fp32) layers: cast only when autocast is off.

    Under autocast the layer op casts ``x`` itself, and when ``x`` already has the autocast dtype that
    cast returns the very tensor the host layer saved for backward. Casting to fp32 first would make
    autocast save a fresh half-precision copy per adapted layer (three for q/k/v, which share one
    input). LoRA's plain path skips the cast already; this covers its dropout path, DyLoRA and the
    kinds that add ``op(x, updown)``. The results are the same bits.
    """
    return x if autocast_enabled(x.device.type) else x.to(dtype)


class AdapterModule(nn.Module):
    """One adapted layer: the base's output plus this kind's delta, times ``multiplier``.

    Subclasses set :attr:`kind`, create their parameters in ``__init__`` and implement
    :meth:`updown`, :meth:`kohya_tensors` and :meth:`load_kohya_tensors`; the default
    :meth:`forward` adds ``layer_op(x, updown())`` to the base output.

    Args:
        name (`str`): kohya name, e.g. ``lora_unet_down_blocks_0_attentions_0_proj_in``.
        org_module (`nn.Linear | nn.Conv2d`): the frozen host layer (kept outside this module's
            parameters so saving and ``.to()`` never touch it).
        dim (`int`): rank (meaning depends on the kind).
        alpha (`float`): scale numerator.
        options (`NetworkOptions`): dropouts and kind-specific options.
        multiplier (`float`, defaults to 1.0): output strength (A1111's te/unet multiplier).
    """

    kind: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        org_module: nn.Module,
        dim: int,
        alpha: float,
        options: NetworkOptions,
        multiplier: float = 1.0,
    ) -> None:
        super().__init__()
        self.lora_name = name
        self._org = [org_module]  # a list: not registered as a submodule
        self.dim = dim
        self.alpha_value = float(alpha)
        self.multiplier = float(multiplier)
        self.module_dropout = options.module_dropout
        self._org_forward: Any = None
        self._previous_forward: Any = None

    # -- wrapping -------------------------------------------------------------------------------
    @property
    def org_module(self) -> nn.Module:
        return self._org[0]

    @classmethod
    def can_wrap(cls, module: nn.Module, dim: int, fused_qkv: bool) -> bool:
        """Whether this kind can adapt ``module`` so that A1111 reads it back (override to restrict)."""
        return isinstance(module, (nn.Linear, nn.Conv2d))

    def apply_to(self) -> None:
        """Route the host layer's calls through this adapter (idempotent)."""
        org = self.org_module
        if self._org_forward is not None:
            return
        self._previous_forward = org.__dict__.get("forward")
        self._org_forward = org.forward
        org.forward = self.forward

    def restore(self) -> None:
        """Give the host layer back its own ``forward`` (exactly the previous state)."""
        org = self.org_module
        if self._org_forward is None:
            return
        if self._previous_forward is None:
            org.__dict__.pop("forward", None)
        else:
            org.forward = self._previous_forward
        self._org_forward = None
        self._previous_forward = None

    # -- math -----------------------------------------------------------------------------------
    def scale(self) -> float:
        """A1111 ``calc_scale``: ``alpha / dim``."""
        return self.alpha_value / self.dim

    def org_weight(self) -> torch.Tensor:
        return self.org_module.weight.detach()

    def updown(self) -> torch.Tensor:
        """The weight delta A1111 adds for this layer, multiplier included, in fp32."""
        raise NotImplementedError

    def merged_delta(self) -> torch.Tensor:
        """Alias of :meth:`updown` (what merging into the base would add)."""
        return self.updown()

    def skip(self) -> bool:
        """Module dropout: skip this layer for this step (training only)."""
        return bool(self.training and self.module_dropout and torch.rand(1).item() < self.module_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self._org_forward(x)
        if self.multiplier == 0.0 or self.skip():
            return y
        delta = self.updown()
        return y + layer_op(self.org_module, adapter_input(x, delta.dtype), delta).to(y.dtype)

    # -- file layout ----------------------------------------------------------------------------
    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        """This layer's tensors by file suffix (``lora_down.weight``, ``alpha``, ``hada_w1_a``...)."""
        raise NotImplementedError

    def load_kohya_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Copy a file's tensors (same suffixes as :meth:`kohya_tensors`) into the parameters."""
        raise NotImplementedError

    def max_norm(self, max_norm: float) -> tuple[bool, float]:
        """kohya ``scale_weight_norms``: shrink the delta to norm ``max_norm``; returns (scaled, norm after).

        The default only reports the norm; low-rank kinds override it.
        """
        with torch.no_grad():
            return False, float(self.updown_unit().norm())

    def updown_unit(self) -> torch.Tensor:
        """The delta at multiplier 1 (used by norms and tests)."""
        saved, self.multiplier = self.multiplier, 1.0
        try:
            return self.updown()
        finally:
            self.multiplier = saved

    def _copy(self, target: torch.Tensor, source: torch.Tensor, key: str) -> None:
        if source.numel() != target.numel():
            raise ValueError(
                f"{self.lora_name}.{key}: file has shape {tuple(source.shape)}, the network {tuple(target.shape)}"
            )
        with torch.no_grad():
            target.copy_(source.reshape(target.shape).to(target.dtype))

    def extra_repr(self) -> str:
        return f"{self.lora_name}, dim={self.dim}, alpha={self.alpha_value}"


def scale_factors(module: AdapterModule, params: list[torch.Tensor], max_norm: float) -> tuple[bool, float]:
    """kohya's max-norm rule for a delta that is a product of ``len(params)`` factors.

    ``n = max(|W|, M/2)``, ratio ``min(n, M)/n``, each factor scaled by ``ratio ** (1/len(params))``
    (sd-scripts ``networks/lora.py apply_max_norm_regularization``: sqrt for up and down).

    Returns:
        `tuple[bool, float]`: whether the weights changed, and the delta norm afterwards.
    """
    with torch.no_grad():
        norm = module.updown_unit().norm()
        clamped = norm.clamp(min=max_norm / 2)
        ratio = float(torch.clamp(clamped, max=max_norm) / clamped)
        if ratio != 1.0:
            for param in params:
                param.mul_(ratio ** (1.0 / len(params)))
        return ratio != 1.0, float(norm) * ratio


def alpha_tensor(value: float) -> torch.Tensor:
    """The 0-dim ``alpha`` tensor kohya writes."""
    return torch.tensor(float(value), dtype=torch.float32)


class ParameterKeysMixin:
    """File I/O and max-norm for kinds whose file keys are exactly their parameter names (plus ``alpha``).

    LoHa (``hada_w1_a`` …) and LoKr (``lokr_w1`` …) store every factor under its own name, so saving,
    loading and kohya's max-norm rule are the same code; a kind lists its names in :attr:`tensor_keys`.
    """

    tensor_keys: ClassVar[tuple[str, ...]] = ()

    def kohya_tensors(self) -> dict[str, torch.Tensor]:
        return {**{key: getattr(self, key) for key in self.tensor_keys}, "alpha": alpha_tensor(self.alpha_value)}

    def load_kohya_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        for key in self.tensor_keys:
            self._copy(getattr(self, key), tensors[key], key)
        if "alpha" in tensors:
            self.alpha_value = float(tensors["alpha"])

    def max_norm(self, max_norm: float) -> tuple[bool, float]:
        return scale_factors(self, [getattr(self, key) for key in self.tensor_keys], max_norm)
