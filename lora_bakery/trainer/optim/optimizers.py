"""The optimizers LoRA Bakery offers, by the names kohya and the guides use, in one table.

Each entry says how to import its class and what to tell the user when that import fails: the
8-bit and D-Adaptation optimizers come from optional packages, Prodigy from ``prodigyopt`` (the
``prodigy`` feature of :mod:`lora_bakery.deps`, which ``install.py`` installs in a webui).
:func:`build_optimizer` types and checks the user's ``k=v`` args against the class before it
builds anything (:mod:`lora_bakery.trainer.optim.args`).
"""

from __future__ import annotations

import contextlib
import inspect
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer

from lora_bakery.trainer.optim.args import OptimizerArgs, parse_optimizer_args, validate_optimizer_args


class OptimizerUnavailable(RuntimeError):
    """The chosen optimizer's package is not installed; the message says how to get it or what to use."""


def _adamw() -> type:
    return torch.optim.AdamW


def _sgd() -> type:
    return torch.optim.SGD


def _lion() -> type:
    from lora_bakery.trainer.optim.lion import Lion

    return Lion


def _adamw8bit() -> type:
    import bitsandbytes

    return bitsandbytes.optim.AdamW8bit


def _prodigy() -> type:
    from prodigyopt import Prodigy

    return Prodigy


def _dadapt_adam() -> type:
    from dadaptation import DAdaptAdam

    return DAdaptAdam


@dataclass(frozen=True)
class OptimizerKind:
    """One optimizer choice.

    Attributes:
        name (`str`): the name users write (kohya's ``--optimizer_type``).
        load (`Callable[[], type]`): imports and returns the class; raises ImportError when missing.
        missing (`str`): what to tell the user when ``load`` fails.
        defaults (`dict`): kwargs applied under the user's args (e.g. SGDNesterov's momentum).
        adaptive (`bool`): learns its own step size (Prodigy, D-Adaptation): lr is a multiplier
            near 1 and every parameter group must share it.
    """

    name: str
    load: Callable[[], type]
    missing: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    adaptive: bool = False


_KINDS: tuple[OptimizerKind, ...] = (
    OptimizerKind("AdamW", _adamw),
    OptimizerKind(
        "AdamW8bit",
        _adamw8bit,
        "AdamW8bit needs the bitsandbytes package (and a CUDA GPU), which does not import here. "
        "Install bitsandbytes into this Python environment, or choose AdamW.",
    ),
    OptimizerKind(
        "Prodigy",
        _prodigy,
        "Prodigy needs the prodigyopt package (LoRA Bakery feature 'prodigy'), which does not import "
        "here. In a webui, install.py adds it on the next start; `bakery doctor` says why it is "
        "missing. Or choose AdamW (lr 1e-4).",
        adaptive=True,
    ),
    OptimizerKind(
        "DAdaptAdam",
        _dadapt_adam,
        "DAdaptAdam needs the dadaptation package, which is not installed; install it "
        "(pip install dadaptation) or choose Prodigy.",
        adaptive=True,
    ),
    OptimizerKind("Lion", _lion),
    OptimizerKind("SGD", _sgd),
    OptimizerKind("SGDNesterov", _sgd, defaults={"nesterov": True, "momentum": 0.9}),
)


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


_BY_KEY = {_norm(kind.name): kind for kind in _KINDS}
OPTIMIZER_NAMES: tuple[str, ...] = tuple(kind.name for kind in _KINDS)


def optimizer_kind(name: str) -> OptimizerKind:
    """Look an optimizer up by name, ignoring case, ``_``, ``-`` and spaces (``adamw_8bit`` = ``AdamW8bit``).

    Args:
        name (`str`): the user's choice.

    Returns:
        `OptimizerKind`

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    kind = _BY_KEY.get(_norm(name))
    if kind is None:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
    return kind


def optimizer_class(name: str) -> type:
    """The optimizer class for ``name``.

    Args:
        name (`str`): optimizer name.

    Returns:
        `type`

    Raises:
        OptimizerUnavailable: its package does not import (message says what to do).
    """
    kind = optimizer_kind(name)
    try:
        return kind.load()
    except Exception as exc:  # ImportError, or a broken install raising anything at import
        raise OptimizerUnavailable(f"{kind.missing} ({type(exc).__name__}: {exc})") from exc


def available_optimizers() -> dict[str, str | None]:
    """Every optimizer name → `None` when usable here, else the reason (for greying out UI choices).

    Returns:
        `dict[str, str | None]`
    """
    out: dict[str, str | None] = {}
    for kind in _KINDS:
        try:
            optimizer_class(kind.name)
            out[kind.name] = None
        except OptimizerUnavailable as exc:
            out[kind.name] = str(exc)
    return out


def _groups(param_groups: Iterable[Any]) -> list[dict[str, Any]]:
    """Normalise to a list of group dicts with list ``params`` (torch accepts both forms; we check them)."""
    items = list(param_groups)
    if not items:
        raise ValueError("no parameters to train: the parameter list is empty")
    if all(isinstance(item, Mapping) for item in items):
        groups = [{**item, "params": list(item["params"])} for item in items]
    elif not any(isinstance(item, Mapping) for item in items):
        groups = [{"params": items}]
    else:
        raise ValueError("param_groups must be all tensors or all dicts with 'params', not a mix")
    if not any(group["params"] for group in groups):
        raise ValueError("no parameters to train: every parameter group is empty")
    return groups


def _check_shared_lr(kind: OptimizerKind, groups: list[dict[str, Any]], lr: float) -> None:
    """Prodigy/D-Adaptation estimate one step size for everything; groups may only differ by lr 0.

    prodigyopt 1.1 raises this at the first step, deep in the loop; kohya only warns that the first
    group's lr wins. Say it before training starts instead.
    """
    lrs = sorted({float(group.get("lr", lr)) for group in groups} - {0.0})
    if len(lrs) > 1:
        raise ValueError(
            f"{kind.name} adapts one step size for all trained parts, so their learning rates must be "
            f"equal (or 0 to freeze a part); got {', '.join(f'{v:g}' for v in lrs)}. "
            "Set the U-Net and text-encoder learning rates to the same value (usually 1)."
        )


def _fused_kwargs(cls: type, groups: list[dict[str, Any]], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``fused=True`` for torch's AdamW/Adam/SGD when every trained tensor is fp32 on a CUDA device.

    The fused kernel updates all adapter tensors in one or two launches instead of a dozen
    multi-tensor ones per step (same math, fp32 state); on a GPU whose step is bound by the CPU
    launching kernels this is measurable. Anything the user set (``fused``, ``foreach``) wins, and
    other devices, dtypes and optimizer classes keep torch's default.
    """
    if cls not in (torch.optim.AdamW, torch.optim.Adam, torch.optim.SGD) or {"fused", "foreach"} & set(kwargs):
        return {}
    if "fused" not in inspect.signature(cls).parameters:  # SGD gained it in torch 2.3
        return {}
    params = [p for group in groups for p in group["params"]]
    if params and all(p.is_cuda and p.dtype == torch.float32 for p in params):
        return {"fused": True}
    return {}


def build_optimizer(
    name: str, param_groups: Iterable[Any], lr: float, args: OptimizerArgs = None
) -> Optimizer:
    """Build the named optimizer over the trained parameters.

    Args:
        name (`str`): one of :data:`OPTIMIZER_NAMES` (any case; ``_``/``-`` ignored).
        param_groups (`Iterable`): tensors, or dicts with ``params`` and optionally ``lr`` (per-part
            learning rates: U-Net, text encoder...) and any other keys the caller wants kept.
        lr (`float`): the default learning rate (groups without ``lr``); ~1 for Prodigy/DAdaptAdam.
        args (`dict`, `list[str]`, `str` or `None`): extra arguments as ``k=v`` text or a dict
            (``["decouple=True", "d_coef=2"]``); see :func:`~lora_bakery.trainer.optim.args.parse_optimizer_args`.

    Returns:
        `torch.optim.Optimizer`

    Raises:
        ValueError: unknown name, no parameters, or groups with different learning rates for an
            adaptive optimizer.
        OptimizerArgError: a bad ``k=v`` argument (the message names it and lists accepted ones).
        OptimizerUnavailable: the optimizer's package is missing.
    """
    kind = optimizer_kind(name)
    cls = optimizer_class(kind.name)
    kwargs = {**kind.defaults, **validate_optimizer_args(kind.name, cls, parse_optimizer_args(args))}
    groups = _groups(param_groups)
    if kind.adaptive:
        _check_shared_lr(kind, groups, lr)
    kwargs.update(_fused_kwargs(cls, groups, kwargs))
    # prodigyopt prints "Using decoupled weight decay"; the trainer never prints (progress goes to the Host).
    with contextlib.redirect_stdout(io.StringIO()):
        return cls(groups, lr=lr, **kwargs)


def optimizer_warnings(name: str, lr: float) -> list[str]:
    """Advice about a working but probably unintended choice (kohya warns about the same things).

    Args:
        name (`str`): optimizer name.
        lr (`float`): the learning rate chosen.

    Returns:
        `list[str]`: messages to show; empty when nothing looks off.
    """
    kind = optimizer_kind(name)
    out = []
    if lr <= 0:
        out.append(f"the learning rate is {lr:g}: {kind.name} will not change the weights.")
    elif kind.adaptive and lr <= 0.1:
        out.append(
            f"{kind.name} finds its own step size and multiplies it by the learning rate, which is "
            f"normally 1; {lr:g} makes every step that much smaller."
        )
    elif not kind.adaptive and lr >= 0.1:
        out.append(f"a learning rate of {lr:g} is very high for {kind.name} (LoRA usually uses about 1e-4).")
    return out


__all__ = [
    "OPTIMIZER_NAMES",
    "OptimizerKind",
    "OptimizerUnavailable",
    "available_optimizers",
    "build_optimizer",
    "optimizer_class",
    "optimizer_kind",
    "optimizer_warnings",
]
