"""Optimizers and learning-rate schedules for training, by the names kohya and the guides use.

``build_optimizer(name, param_groups, lr, args)`` takes kohya-style ``k=v`` optimizer args and
checks them against the optimizer before building it; ``build_scheduler(name, optimizer, ...)``
returns a resumable ``LambdaLR`` whose curve :func:`lr_at` computes step by step.
"""

from lora_bakery.trainer.optim.args import OptimizerArgError, parse_optimizer_args, parse_value
from lora_bakery.trainer.optim.lion import Lion
from lora_bakery.trainer.optim.optimizers import (
    OPTIMIZER_NAMES,
    OptimizerUnavailable,
    available_optimizers,
    build_optimizer,
    optimizer_class,
    optimizer_kind,
    optimizer_warnings,
)
from lora_bakery.trainer.optim.schedulers import (
    SCHEDULER_NAMES,
    build_scheduler,
    lr_at,
    lr_curve,
    resolve_warmup,
    scheduler_name,
    scheduler_warnings,
)

__all__ = [
    "OPTIMIZER_NAMES",
    "SCHEDULER_NAMES",
    "Lion",
    "OptimizerArgError",
    "OptimizerUnavailable",
    "available_optimizers",
    "build_optimizer",
    "build_scheduler",
    "lr_at",
    "lr_curve",
    "optimizer_class",
    "optimizer_kind",
    "optimizer_warnings",
    "parse_optimizer_args",
    "parse_value",
    "resolve_warmup",
    "scheduler_name",
    "scheduler_warnings",
]
