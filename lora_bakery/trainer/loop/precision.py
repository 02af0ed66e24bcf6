"""Device, autocast and loss scaling for a run: the frozen base stays in the host's dtype, adapters in fp32.

kohya's ``--mixed_precision`` picks the autocast dtype; LoRA parameters stay fp32 (reference §7).
On the CPU fp16 autocast is slow and rarely what the user meant, so an fp32 host trains in fp32
there (said in the log); a half-precision host must autocast in its own dtype, or its layers would
meet fp32 activations.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import torch

_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "no": None}


@dataclass
class Precision:
    """The numeric setup of one run.

    Attributes:
        device (`torch.device`): where the host's weights live (and training runs).
        base_dtype (`torch.dtype`): the host's weight dtype.
        autocast_dtype (`torch.dtype`, *optional*): ``None`` = no autocast (fp32).
        use_scaler (`bool`): fp16 on CUDA needs a GradScaler.
        messages (`list[str]`): what was decided and why.
    """

    device: torch.device
    base_dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    use_scaler: bool = False
    messages: list[str] = field(default_factory=list)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast context of a forward pass (a no-op in fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def scaler(self) -> Any:
        """A GradScaler for fp16 on CUDA, else ``None``."""
        if not self.use_scaler:
            return None
        try:
            return torch.amp.GradScaler("cuda")
        except (AttributeError, TypeError):  # older torch
            return torch.cuda.amp.GradScaler()


def choose_precision(mixed_precision: str, base: torch.Tensor, device: torch.device | None = None) -> Precision:
    """Decide autocast and scaling from the config and the host's weights.

    Args:
        mixed_precision (`str`): ``"fp16"``, ``"bf16"`` or ``"no"`` (``training.mixed_precision``).
        base (`torch.Tensor`): any of the host's U-Net weights (its dtype is read, and its device
            unless ``device`` is given).
        device (`torch.device`, *optional*): where training runs when that is not where the host
            keeps its weights (A1111 ``--medvram``: the weights wait on the CPU).

    Returns:
        `Precision`
    """
    if mixed_precision not in _DTYPES:
        raise ValueError(f"mixed_precision must be fp16, bf16 or no, got {mixed_precision!r}")
    device, base_dtype = torch.device(device) if device is not None else base.device, base.dtype
    wanted = _DTYPES[mixed_precision]
    messages: list[str] = []
    if device.type == "cuda":
        if wanted is None and base_dtype != torch.float32:
            wanted = base_dtype
            messages.append(f"The model is loaded in {_name(base_dtype)}; training autocasts to it (mixed_precision 'no' needs an fp32 model).")
        if wanted == torch.bfloat16 and not torch.cuda.is_bf16_supported():
            wanted = torch.float16
            messages.append("This GPU has no bf16; training in fp16 with loss scaling instead.")
        return Precision(device, base_dtype, wanted, use_scaler=wanted == torch.float16, messages=messages)
    # CPU (and other devices): autocast only where the host's own dtype requires it
    if base_dtype in (torch.float16, torch.bfloat16):
        if wanted != base_dtype:
            messages.append(f"The model is loaded in {_name(base_dtype)} on the {device.type}; training autocasts to it.")
        return Precision(device, base_dtype, base_dtype, messages=messages)
    if wanted == torch.float16:
        messages.append(f"fp16 mixed precision needs a GPU; training in fp32 on the {device.type}.")
        wanted = None
    return Precision(device, base_dtype, wanted, messages=messages)


def _name(dtype: torch.dtype) -> str:
    return {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}.get(dtype, str(dtype))
