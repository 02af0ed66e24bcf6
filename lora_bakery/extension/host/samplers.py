"""A1111 sampler names → diffusers schedulers, for the standalone host.

Users and saved configs speak A1111's names ("DPM++ 2M", "Euler a"), so the standalone host
accepts the same names and picks the diffusers scheduler that implements that sampler.
"""

from __future__ import annotations

from typing import Any

from .base import HostError

# name -> (diffusers scheduler class, extra config)
SAMPLERS: dict[str, tuple[str, dict[str, Any]]] = {
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DDIM": ("DDIMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
}
DEFAULT_SAMPLER = "Euler a"


def make_scheduler(name: str | None, base_config: dict[str, Any]) -> tuple[str, Any]:
    """Build the scheduler for A1111 sampler ``name`` (``None`` → the default).

    Returns:
        `tuple[str, SchedulerMixin]`: the canonical sampler name and the scheduler.
    """
    import diffusers

    name = name or DEFAULT_SAMPLER
    if name not in SAMPLERS:
        raise HostError(f"Unknown sampler {name!r}. Available here: {', '.join(SAMPLERS)}")
    cls_name, extra = SAMPLERS[name]
    cls = getattr(diffusers, cls_name)
    return name, cls.from_config({**base_config, **extra})
