"""``training.fp8_base`` (kohya ``--fp8_base``): the frozen U-Net's Linear/Conv weights stored in
``torch.float8_e4m3fn`` for the run, upcast per layer by autocast; adapters stay fp32.

Only Linear and Conv2d *weights* are stored in fp8: autocast casts every floating input of
``linear``/``conv2d`` (fp8 included) to its dtype, but norms have no such cast on every device
(CPU ``group_norm`` rejects an fp8 weight), and biases are too small to matter. kohya casts the
whole U-Net and relies on CUDA's autocast lists; this keeps to what works everywhere.

The copies are made by :class:`~lora_bakery.trainer.placement.ViewPlacement` when the U-Net is
brought to the device; the host's tensors are never converted (see that module).
"""

from __future__ import annotations

from typing import Any

import torch

FP8 = getattr(torch, "float8_e4m3fn", None)


def fp8_keys(views: Any) -> frozenset[str]:
    """Checkpoint keys of the U-Net's Linear and Conv2d weights (what fp8_base stores in fp8).

    Args:
        views (`ModelViews`): the training views.

    Returns:
        `frozenset[str]`: checkpoint keys (``model.diffusion_model....weight``).
    """
    from .models import family_for

    unet_spec = family_for(views.architecture).components(views.configs)[0]
    keys = set()
    for name, module in views.unet.named_modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            keys.add(unet_spec.entry(f"{name}.weight" if name else "weight").source)
    return frozenset(keys)


def fp8_problem(device: torch.device, autocast_dtype: torch.dtype | None) -> str | None:
    """Why fp8_base cannot run here, or ``None`` when it can (checked on a tiny layer on ``device``).

    Args:
        device (`torch.device`): where training runs.
        autocast_dtype (`torch.dtype`, *optional*): the run's autocast dtype (``None`` = fp32, no autocast).

    Returns:
        `str | None`: a message naming the setting to change.
    """
    if FP8 is None:
        return (f"training.fp8_base needs torch 2.1 or newer (float8_e4m3fn); this is torch {torch.__version__}. "
                "Turn training.fp8_base off.")
    if autocast_dtype is None:
        return ("training.fp8_base needs mixed precision: autocast upcasts the fp8 weights per layer. Set "
                "training.mixed_precision to bf16 (or fp16 on a GPU); on the CPU only bf16 autocasts.")
    try:  # no random numbers drawn: the run's seeds stay untouched
        weight = torch.full((8, 8), 0.1, device=device).to(FP8)
        kernel = torch.full((8, 8, 3, 3), 0.05, device=device).to(FP8)
        x = torch.full((1, 8, 4, 4), 0.5, device=device, requires_grad=True)
        with torch.autocast(device_type=device.type, dtype=autocast_dtype):
            y = torch.nn.functional.linear(torch.nn.functional.conv2d(x, kernel, padding=1).permute(0, 2, 3, 1), weight)
        y.float().sum().backward()
        if x.grad is None or not torch.isfinite(x.grad).all():
            return "training.fp8_base: gradients through fp8 weights are not finite on this device; turn it off."
    except (RuntimeError, TypeError) as exc:
        return (f"training.fp8_base does not work on this {device.type} with {str(autocast_dtype).replace('torch.', '')} "
                f"autocast ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); turn training.fp8_base off.")
    return None


def fp8_bytes_saved(keys: frozenset[str], parameters: Any) -> int:
    """Bytes the fp8 copies save against the host's dtype (for the log)."""
    saved = 0
    for key in keys:
        t = parameters[key]
        saved += t.numel() * (t.element_size() - 1)
    return saved
