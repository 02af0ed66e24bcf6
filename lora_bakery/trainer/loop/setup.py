"""Turning a config and the host's model into the pieces the loop steps: options, network,
optimizer, schedule, and the host state to give back afterwards.

Every function here maps config fields onto the B1/B2/B3 building blocks; none of them trains.
"""

from __future__ import annotations

import ast
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from ..config import TrainConfig, parse_kv_args
from ..losses import LossOptions
from ..noise import NoiseOptions


def network_options(config: TrainConfig, architecture: str) -> Any:
    """The adapter kind's options dataclass from ``config.network`` (per-block lists keyed by block id).

    ``network.args`` entries that name a field of the kind's options (``factor=8`` for LoKr) set
    it; the others are kept as ``extra_args`` and written to ``ss_network_args``.
    """
    from ..adapters import adapter_kind, block_values, make_options

    net = config.network
    kind = adapter_kind(net.type)
    names = {f.name for f in dataclasses.fields(kind.options)}
    values: dict[str, Any] = {
        "dim": net.dim,
        "alpha": net.alpha,
        "conv_dim": net.conv_dim,
        "conv_alpha": net.conv_alpha,
        "dropout": net.dropout,
        "rank_dropout": net.rank_dropout,
        "module_dropout": net.module_dropout,
        "unit": net.dylora_unit,  # DyLoRA's rank band; only kinds with that field take it
    }
    for name in ("block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas"):
        if getattr(net, name) is not None:
            values[name] = block_values(getattr(net, name), architecture)
    extra: dict[str, str] = {}
    for key, raw in parse_kv_args(net.args, "network.args", literal=False).items():
        if key in names and key != "extra_args":
            try:
                values[key] = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                values[key] = raw
        else:
            extra[key] = raw
    if extra:
        values["extra_args"] = extra
    return make_options(net.type, **{k: v for k, v in values.items() if k in names})


def loss_options(config: TrainConfig) -> LossOptions:
    """kohya's loss options from ``config.training``."""
    tr = config.training
    return LossOptions(
        loss_type=tr.loss_type,
        huber_schedule=tr.huber_schedule,
        huber_c=tr.huber_c,
        huber_scale=tr.huber_scale,
        min_snr_gamma=tr.min_snr_gamma,
        debiased_estimation_loss=tr.debiased_estimation,
    )


def noise_options(config: TrainConfig) -> NoiseOptions:
    """kohya's noise options from ``config.training`` (unset = off)."""
    tr = config.training
    return NoiseOptions(
        noise_offset=tr.noise_offset or 0.0,
        noise_offset_random_strength=tr.noise_offset_random_strength,
        adaptive_noise_scale=tr.adaptive_noise_scale,
        multires_noise_iterations=tr.multires_noise_iterations or 0,
        multires_noise_discount=tr.multires_noise_discount,
        ip_noise_gamma=tr.ip_noise_gamma or 0.0,
        ip_noise_gamma_random_strength=tr.ip_noise_gamma_random_strength,
        min_timestep=tr.min_timestep,
        max_timestep=tr.max_timestep,
    )


@dataclass
class Schedule:
    """How long the run is.

    Attributes:
        batches_per_epoch (`int`): batches this process trains per epoch.
        steps_per_epoch (`int`): optimizer steps per epoch (accumulation included; a partial
            accumulation at the end of an epoch still steps, as accelerate does).
        epochs (`int`): epochs to run.
        total_steps (`int`): optimizer steps of the whole run.
    """

    batches_per_epoch: int
    steps_per_epoch: int
    epochs: int
    total_steps: int


def plan_schedule(batches_per_epoch: int, grad_accum: int, epochs: int, max_steps: int | None) -> Schedule:
    """Epochs and optimizer steps; ``max_steps`` overrides ``epochs`` (kohya ``max_train_steps``)."""
    steps_per_epoch = max(1, math.ceil(batches_per_epoch / grad_accum))
    if max_steps:
        epochs = math.ceil(max_steps / steps_per_epoch)
        total = max_steps
    else:
        total = steps_per_epoch * epochs
    return Schedule(batches_per_epoch, steps_per_epoch, epochs, total)


def optimizer_and_scheduler(config: TrainConfig, groups: list[dict[str, Any]], total_steps: int) -> tuple[Any, Any]:
    """The optimizer over the network's parameter groups and its learning-rate schedule."""
    from ..optim import build_optimizer, build_scheduler

    opt = config.optimizer
    optimizer = build_optimizer(opt.type, groups, opt.lr, opt.args)
    warmup: int | float = int(opt.warmup) if opt.warmup >= 1 else float(opt.warmup)
    scheduler = build_scheduler(
        opt.scheduler, optimizer, total_steps, warmup=warmup, cycles=opt.cycles,
        power=opt.power, min_lr=opt.min_lr, gamma=opt.gamma,
    )
    return optimizer, scheduler


@dataclass
class HostState:
    """What training may change on the host's side and must give back: requires_grad flags of the
    host tensors, and the views' train/eval mode and gradient checkpointing switches."""

    requires_grad: dict[str, bool] = field(default_factory=dict)
    modes: list[tuple[torch.nn.Module, bool]] = field(default_factory=list)

    @classmethod
    def record(cls, parameters: Mapping[str, torch.Tensor]) -> HostState:
        return cls({key: bool(t.requires_grad) for key, t in parameters.items() if isinstance(t, torch.Tensor)})

    def remember_mode(self, module: torch.nn.Module) -> None:
        self.modes.append((module, module.training))

    def restore(self, parameters: Mapping[str, torch.Tensor]) -> None:
        for module, training in reversed(self.modes):
            _set_checkpointing(module, False)
            if getattr(module, "_require_grads_hook", None) is not None and hasattr(module, "disable_input_require_grads"):
                module.disable_input_require_grads()
            module.train(training)
        self.modes.clear()
        for key, flag in self.requires_grad.items():
            tensor = parameters.get(key)
            if tensor is not None and tensor.requires_grad != flag and tensor.is_leaf:
                tensor.requires_grad_(flag)


def _set_checkpointing(module: torch.nn.Module, enabled: bool) -> None:
    """Switch gradient checkpointing on a diffusers or transformers module (both APIs, old and new)."""
    if hasattr(module, "enable_gradient_checkpointing"):  # diffusers
        if enabled:
            module.enable_gradient_checkpointing()
        elif getattr(module, "is_gradient_checkpointing", False) or hasattr(module, "disable_gradient_checkpointing"):
            module.disable_gradient_checkpointing()
    elif hasattr(module, "gradient_checkpointing_enable"):  # transformers
        if enabled:
            module.gradient_checkpointing_enable()
        else:
            module.gradient_checkpointing_disable()


def prepare_modules(views: Any, host: HostState, train_te: bool, checkpointing: bool) -> None:
    """Put the U-Net (and trained text encoders) in train mode, with checkpointing if asked.

    Train mode is what turns checkpointing on in diffusers 0.31 and transformers; both models have
    no dropout in SD configs, so outputs do not change. :meth:`HostState.restore` undoes it.
    """
    modules = [views.unet] + (list(views.text_encoders) if train_te else [])
    for module in modules:
        host.remember_mode(module)
        module.train(True)
        if checkpointing:
            _set_checkpointing(module, True)
            if module is not views.unet and hasattr(module, "enable_input_require_grads"):
                # reentrant checkpointing (transformers' default in some versions) only passes
                # gradients on when an input requires grad; the frozen embeddings' output does not
                module.enable_input_require_grads()
