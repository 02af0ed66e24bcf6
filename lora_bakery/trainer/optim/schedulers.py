"""Learning-rate schedules: the ones kohya takes from transformers, plus LoRA Easy Training's
"annealed cosine with warmup restarts".

Every schedule is one pure function of the step (:func:`lr_at`), so tests check it against hand
computations and the UI can draw the curve before training (:func:`lr_curve`). The scheduler the
loop steps is a ``LambdaLR`` over that function: its state is just the step count, so resuming
from a saved state gives the same learning rates as an uninterrupted run.

The transformers formulas (``transformers/optimization.py``, kohya ``get_scheduler_fix``) are copied
here rather than imported so the A1111 environment's transformers 4.30 and the standalone 4.57 give
identical curves. Step ``s`` is the number of optimizer steps already taken (the first step trains
with ``lr_at(0)``), as in transformers and kohya.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

# LoRA Easy Training's default min_lr for its cosine restarts, and transformers' default lr_end.
ANNEALED_MIN_LR = 1e-6
POLYNOMIAL_LR_END = 1e-7

SCHEDULER_NAMES: tuple[str, ...] = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "annealed_cosine_with_warmup_restarts",
)
_ALIASES = {
    # LoRA Easy Training's class and the guide's wording
    "cosineannealingwarmrestarts": "annealed_cosine_with_warmup_restarts",
    "cosineannealingwarmuprestarts": "annealed_cosine_with_warmup_restarts",
    "annealedcosinewithwarmuprestarts": "annealed_cosine_with_warmup_restarts",
    "annealedcosine": "annealed_cosine_with_warmup_restarts",
}


def scheduler_name(name: str) -> str:
    """Canonical schedule name; case, spaces, ``-`` and ``_`` do not matter.

    Args:
        name (`str`): e.g. ``"Cosine with restarts"``, ``"CosineAnnealingWarmRestarts"``.

    Returns:
        `str`: one of :data:`SCHEDULER_NAMES`.

    Raises:
        ValueError: unknown name, listing the known ones.
    """
    key = "".join(ch for ch in name.lower() if ch.isalnum())
    for canonical in SCHEDULER_NAMES:
        if key == canonical.replace("_", ""):
            return canonical
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(f"unknown lr scheduler {name!r}; choose one of {', '.join(SCHEDULER_NAMES)}")


def resolve_warmup(warmup: int | float, total_steps: int) -> int:
    """Warmup in steps: an int is a step count, a float below 1 a fraction of the total (kohya
    ``--lr_warmup_steps``: ``int(fraction · total)``).

    Args:
        warmup (`int` or `float`): steps or fraction.
        total_steps (`int`): optimizer steps in the whole run.

    Returns:
        `int`

    Raises:
        ValueError: negative, or a float ≥ 1 that is not a whole number.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup!r}")
    if isinstance(warmup, float) and warmup < 1:
        return int(warmup * total_steps)
    if isinstance(warmup, float) and not warmup.is_integer():
        raise ValueError(
            f"warmup {warmup!r}: give a step count, or a fraction of the run below 1 (e.g. 0.05)"
        )
    return int(warmup)


def _warmup_factor(step: int, warmup: int) -> float:
    return step / max(1, warmup)


def _annealed_cosine(
    step: int, base_lr: float, cycle_steps: int, warmup: int, gamma: float, min_lr: float
) -> float:
    """LoRA Easy Training's ``CosineAnnealingWarmRestarts`` (custom_scheduler/LoraEasyCustomOptimizer),
    with cycle multiplier 1.

    Cycle c (0-based) peaks at base·γᶜ; it warms up linearly from min_lr for ``warmup`` steps, then
    follows min_lr + (peak − min_lr)·(1 + cos(π·s/(L − warmup)))/2. A peak at or below min_lr
    gives min_lr.
    """
    cycle, s = divmod(step, cycle_steps)
    peak = base_lr * gamma**cycle
    if peak <= min_lr:
        return min_lr
    span = peak - min_lr
    if s < warmup:
        return span * s / warmup + min_lr
    return min_lr + span * (1 + math.cos(math.pi * (s - warmup) / (cycle_steps - warmup))) / 2


def lr_at(
    name: str,
    step: int,
    base_lr: float,
    total_steps: int,
    warmup: int | float = 0,
    cycles: int = 1,
    power: float = 1.0,
    min_lr: float | None = None,
    gamma: float = 0.9,
) -> float:
    """The learning rate after ``step`` optimizer steps.

    - constant: base (ignores warmup, as transformers and kohya do)
    - constant_with_warmup: base·s/W during warmup, then base
    - linear: warmup, then base·(T − s)/(T − W), down to 0 at T
    - cosine: warmup, then base·½(1 + cos(π·p)), p = (s − W)/(T − W)
    - cosine_with_restarts: warmup, then base·½(1 + cos(π·((cycles·p) mod 1))): hard restarts, no decay
    - polynomial: warmup, then (base − end)·(1 − p)^power + end, end = 1e-7 (transformers' default,
      which kohya does not expose)
    - annealed_cosine_with_warmup_restarts: ``cycles`` cycles of T // cycles steps, each with
      W // cycles warmup steps from min_lr (default 1e-6), peak decaying by ``gamma`` per cycle
      (LoRA Easy Training's UI sends gamma = 1 − "decay").

    Args:
        name (`str`): schedule name (:func:`scheduler_name`).
        step (`int`): optimizer steps already taken.
        base_lr (`float`): the group's learning rate; a group with 0 stays 0 in every schedule.
        total_steps (`int`): T, optimizer steps in the run.
        warmup (`int` or `float`, defaults to 0): W, steps or a fraction below 1 (:func:`resolve_warmup`).
        cycles (`int`, defaults to 1): restarts count for the two restart schedules.
        power (`float`, defaults to 1.0): polynomial power.
        min_lr (`float`, *optional*): floor of the annealed cosine (default 1e-6); the other
            schedules do not use it, as in kohya.
        gamma (`float`, defaults to 0.9): per-cycle peak decay of the annealed cosine.

    Returns:
        `float`
    """
    name = scheduler_name(name)
    _check(name, total_steps, cycles, power, min_lr, gamma)
    if base_lr == 0:
        return 0.0
    w = resolve_warmup(warmup, total_steps)
    if name == "constant":
        return base_lr
    if name == "annealed_cosine_with_warmup_restarts":
        cycle_steps, cycle_warmup = total_steps // cycles, w // cycles
        if cycle_warmup >= cycle_steps:
            raise ValueError(
                f"warmup per cycle ({cycle_warmup} steps) must be shorter than a cycle ({cycle_steps} steps)"
            )
        floor = ANNEALED_MIN_LR if min_lr is None else min_lr
        return _annealed_cosine(step, base_lr, cycle_steps, cycle_warmup, gamma, floor)
    if w > total_steps:
        raise ValueError(f"warmup ({w} steps) is longer than the training ({total_steps} steps)")
    if step < w:
        return base_lr * _warmup_factor(step, w)
    progress = (step - w) / max(1, total_steps - w)
    if name == "constant_with_warmup":
        factor = 1.0
    elif name == "linear":
        factor = max(0.0, (total_steps - step) / max(1, total_steps - w))
    elif name == "cosine":
        factor = max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
    elif name == "cosine_with_restarts":
        factor = (
            0.0
            if progress >= 1.0
            else max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))
        )
    else:  # polynomial
        end = POLYNOMIAL_LR_END
        if not base_lr > end:
            raise ValueError(
                f"polynomial ends at {end:g}, so the learning rate must be above that (got {base_lr:g})"
            )
        if step > total_steps:
            return end
        return (base_lr - end) * (1 - progress) ** power + end
    return base_lr * factor


def _check(
    name: str, total_steps: int, cycles: int, power: float, min_lr: float | None, gamma: float
) -> None:
    if not isinstance(total_steps, int) or total_steps < 1:
        raise ValueError(f"total_steps must be a whole number of steps ≥ 1, got {total_steps!r}")
    if name in ("cosine_with_restarts", "annealed_cosine_with_warmup_restarts"):
        if not isinstance(cycles, int) or cycles < 1:
            raise ValueError(f"cycles must be a whole number ≥ 1, got {cycles!r}")
        if name.startswith("annealed") and cycles > total_steps:
            raise ValueError(f"cycles ({cycles}) cannot exceed the total steps ({total_steps})")
    if name == "polynomial" and not power > 0:
        raise ValueError(f"power must be greater than 0, got {power!r}")
    if min_lr is not None and min_lr < 0:
        raise ValueError(f"min_lr must be 0 or more, got {min_lr!r}")
    if name.startswith("annealed") and not gamma > 0:
        raise ValueError(f"gamma must be greater than 0, got {gamma!r}")


def lr_curve(name: str, base_lr: float, total_steps: int, **kwargs) -> list[float]:
    """The learning rate at every step 0…T−1, e.g. to draw the schedule in the UI before training.

    Args:
        name (`str`): schedule name.
        base_lr (`float`): learning rate.
        total_steps (`int`): T.
        **kwargs: ``warmup``, ``cycles``, ``power``, ``min_lr``, ``gamma`` as in :func:`lr_at`.

    Returns:
        `list[float]`
    """
    return [lr_at(name, s, base_lr, total_steps, **kwargs) for s in range(total_steps)]


def build_scheduler(
    name: str,
    optimizer: Optimizer,
    total_steps: int,
    warmup: int | float = 0,
    cycles: int = 1,
    power: float = 1.0,
    min_lr: float | None = None,
    gamma: float = 0.9,
) -> LambdaLR:
    """A ``LambdaLR`` that gives each parameter group ``lr_at(step)`` of its own learning rate.

    Call ``scheduler.step()`` after every ``optimizer.step()``. Save and restore it with
    ``state_dict()``/``load_state_dict()`` (build it with the same arguments first).

    Args:
        name (`str`): schedule name (:data:`SCHEDULER_NAMES` or an alias).
        optimizer (`torch.optim.Optimizer`): the optimizer, freshly built (group ``lr`` = base lr).
        total_steps (`int`): optimizer steps in the run (after gradient accumulation).
        warmup (`int` or `float`, defaults to 0): steps, or a fraction of ``total_steps`` below 1.
        cycles (`int`, defaults to 1): for cosine_with_restarts and the annealed cosine.
        power (`float`, defaults to 1.0): for polynomial.
        min_lr (`float`, *optional*): floor of the annealed cosine (default 1e-6); unused by the others.
        gamma (`float`, defaults to 0.9): per-cycle decay of the annealed cosine's peak.

    Returns:
        `torch.optim.lr_scheduler.LambdaLR`

    Raises:
        ValueError: unknown name or impossible settings (warmup longer than the run...).
    """
    canonical = scheduler_name(name)
    settings = {"warmup": warmup, "cycles": cycles, "power": power, "min_lr": min_lr, "gamma": gamma}

    def factor_for(base: float) -> Callable[[int], float]:
        def factor(step: int) -> float:
            return lr_at(canonical, step, base, total_steps, **settings) / base if base else 0.0

        return factor

    bases = [float(group.get("initial_lr", group["lr"])) for group in optimizer.param_groups]
    for base in bases:  # fail now, not at step 0 inside LambdaLR
        lr_at(canonical, 0, base, total_steps, **settings)
    return LambdaLR(optimizer, [factor_for(base) for base in bases])


def scheduler_warnings(name: str, warmup: int | float = 0, cycles: int = 1) -> list[str]:
    """Settings the chosen schedule ignores, so the UI can say so instead of silently dropping them.

    Args:
        name (`str`): schedule name.
        warmup (`int` or `float`, defaults to 0): warmup setting.
        cycles (`int`, defaults to 1): cycles setting.

    Returns:
        `list[str]`
    """
    canonical = scheduler_name(name)
    out = []
    if canonical == "constant" and warmup:
        out.append(
            "the constant schedule ignores warmup (as kohya's does); choose constant_with_warmup to use it."
        )
    if cycles != 1 and canonical not in ("cosine_with_restarts", "annealed_cosine_with_warmup_restarts"):
        out.append(f"{canonical} ignores cycles; only the two restart schedules use them.")
    return out


__all__ = [
    "ANNEALED_MIN_LR",
    "POLYNOMIAL_LR_END",
    "SCHEDULER_NAMES",
    "build_scheduler",
    "lr_at",
    "lr_curve",
    "resolve_warmup",
    "scheduler_name",
    "scheduler_warnings",
]
