"""The run's memory estimate: what :mod:`..memory_estimate` is told about this bake, the log line
before the first step, and the out-of-memory message that names the saver to turn on."""

from __future__ import annotations

from typing import Any

import torch

from ..memory_estimate import GIB, VramEstimate, estimate_training_vram
from .placing import moves_host_parts

_DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def _numel(module: Any, linear_conv: bool = False) -> int:
    if linear_conv:
        return sum(m.weight.numel() for m in module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    return sum(p.numel() for p in module.parameters())


def _largest_bucket(plan: Any) -> tuple[int, int]:
    return max((item.bucket for item in plan.items), key=lambda wh: wh[0] * wh[1])


def estimate_for_run(run: Any) -> VramEstimate:
    """The estimate for a run whose setup is done (views placed, network built, caches decided)."""
    from .text import CachedConditioning

    cfg, views = run.config, run.views
    free = None
    if run.device.type == "cuda":
        try:
            free = int(torch.cuda.mem_get_info(run.device)[0])
        except (RuntimeError, AssertionError):
            free = None
    counts = {
        "unet_params": _numel(views.unet), "unet_linear_conv": _numel(views.unet, linear_conv=True),
        "text_params": sum(_numel(te) for te in views.text_encoders), "vae_params": _numel(views.vae),
    }
    batch = max(int(d.get("batch_size") or cfg.training.batch_size) for d in run.plan.datasets)
    host_dtype = run.precision.base_dtype
    estimate = estimate_training_vram(
        dict(views.unet.config), _largest_bucket(run.plan), batch,
        gradient_checkpointing=cfg.training.gradient_checkpointing,
        mixed_precision=_DTYPE_NAMES.get(run.precision.autocast_dtype, "fp32") if run.precision.autocast_dtype else "fp32",
        weight_dtype=_DTYPE_NAMES.get(host_dtype, "fp16"), fp8_base=cfg.training.fp8_base,
        placement=moves_host_parts(run), cache_text_encoder_outputs=isinstance(run.text, CachedConditioning),
        train_text_encoder=run.train_te, vae_on_device=bool(getattr(run.cache, "live", False)),
        network_params=sum(p.numel() for p in run.params), optimizer=cfg.optimizer.type, counts=counts,
        text_configs=[te.config.to_dict() for te in views.text_encoders], free_bytes=free, device=run.device.type,
    )
    if free is not None:  # read after the weights and adapters were placed
        estimate.in_place = estimate.weights + estimate.adapters
    return estimate


def note_estimate(run: Any) -> None:
    """Log the estimate before the first step; warn with the savers when it will not fit."""
    try:
        run.memory_estimate = estimate_for_run(run)
    except (KeyError, ValueError, TypeError) as exc:  # an odd config: the bake does not depend on the estimate
        run.memory_estimate = None
        run.note(f"memory estimate unavailable ({type(exc).__name__}: {exc})")
        return
    where = run.device.type.upper() if run.device.type == "cuda" else run.device.type
    run.note(f"{run.memory_estimate.line()} on the {where}")
    for text in run.memory_estimate.notes:
        run.note(text)
    if run.memory_estimate.fits() is False:
        run.note(f"this will probably not fit: {run.memory_estimate.advice()}")


def oom_message(run: Any, exc: BaseException) -> str:
    """The out-of-memory message: what took the memory and which saver to turn on (config keys, which are
    also the Bake form's labels)."""
    estimate = getattr(run, "memory_estimate", None)
    detail = f" ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if estimate is None:
        return ("Out of memory while training. Turn on training.gradient_checkpointing, "
                "training.cache_text_encoder_outputs and training.fp8_base, lower training.batch_size or the "
                "resolution, or free memory used by other programs." + detail)
    free = f"; {estimate.free / GIB:.1f} GiB were free" if estimate.free is not None else ""
    return (f"Out of memory while training: the estimate was ≈ {estimate.total / GIB:.1f} GiB{free}. "
            f"{estimate.advice()[0].upper()}{estimate.advice()[1:]} Also free memory used by other programs "
            "(other webui tabs, browsers)." + detail)
