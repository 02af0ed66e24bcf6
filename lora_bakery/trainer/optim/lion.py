"""Lion (EvoLved Sign Momentum), written out so it needs no extra package.

Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2:

    c  = β1·m + (1 − β1)·g
    θ ← θ − lr·(sign(c) + λ·θ)
    m ← β2·m + (1 − β2)·g

The update has the same size for every coordinate, so Lion wants a learning rate 3–10× smaller
than AdamW's and a weight decay 3–10× larger (paper §5). ``lion-pytorch`` implements the same
rule; one own implementation keeps the A1111 environment free of another dependency.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch.optim import Optimizer


class Lion(Optimizer):
    """Lion optimizer.

    Args:
        params (`Iterable`): parameters or parameter groups.
        lr (`float`, defaults to 1e-4): learning rate.
        betas (`tuple[float, float]`, defaults to ``(0.9, 0.99)``): β1 (update interpolation) and
            β2 (momentum decay).
        weight_decay (`float`, defaults to 0.0): λ, decoupled (multiplied by lr as in the paper).
    """

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Lion lr must be 0 or more, got {lr!r}")
        if not all(0.0 <= b < 1.0 for b in betas) or len(betas) != 2:
            raise ValueError(f"Lion betas must be two numbers in [0, 1), got {betas!r}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Lion weight_decay must be 0 or more, got {weight_decay!r}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """One update of every parameter that has a gradient.

        Args:
            closure (`Callable`, *optional*): re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, if a closure was given.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                exp_avg = state["exp_avg"]
                # θ ← θ − lr·λ·θ, using θ before the sign step (the paper's θ_{t−1})
                if wd:
                    p.mul_(1 - lr * wd)
                update = exp_avg.mul(beta1).add_(grad, alpha=1 - beta1).sign_()
                p.add_(update, alpha=-lr)
                exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
        return loss
