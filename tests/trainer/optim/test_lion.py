"""Lion against the paper's update rule (Chen et al. 2023, Algorithm 2), computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lora_bakery.trainer.optim.lion import Lion


def _sign(x: float) -> float:
    return math.copysign(1.0, x) if x else 0.0


def _hand_lion(theta, grads, lr, beta1, beta2, wd):
    m = [0.0] * len(theta)
    theta = list(theta)
    for g in grads:
        for i in range(len(theta)):
            c = beta1 * m[i] + (1 - beta1) * g[i]
            theta[i] = theta[i] - lr * (_sign(c) + wd * theta[i])
            m[i] = beta2 * m[i] + (1 - beta2) * g[i]
    return theta


def test_lion_matches_the_paper_update():
    theta0 = [1.0, -2.0, 0.5, 0.0]
    grads = [[0.3, -0.1, 0.0, 2.0], [-0.5, -0.2, 0.4, -0.1], [0.05, 0.3, -0.6, -3.0]]
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    opt = Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    assert p.detach().tolist() == pytest.approx(_hand_lion(theta0, grads, 0.1, 0.9, 0.99, 0.5), abs=1e-12)


def test_lion_skips_params_without_grad_and_returns_closure_loss():
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = Lion([a, b], lr=0.01)

    def closure():
        opt.zero_grad()
        loss = (a * 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert a.detach().tolist() == pytest.approx([0.99, 0.99]) and b.detach().tolist() == [1.0, 1.0]


def test_lion_state_round_trips():
    p = torch.nn.Parameter(torch.ones(3))
    opt = Lion([p], lr=0.01)
    p.grad = torch.tensor([1.0, -1.0, 0.5])
    opt.step()
    again = Lion([torch.nn.Parameter(p.detach().clone())], lr=0.01)
    again.load_state_dict(opt.state_dict())
    assert torch.equal(next(iter(again.state.values()))["exp_avg"], opt.state[p]["exp_avg"])


@pytest.mark.parametrize("kwargs", [{"lr": -1.0}, {"betas": (1.0, 0.9)}, {"weight_decay": -0.1}])
def test_lion_rejects_bad_hyperparameters(kwargs):
    with pytest.raises(ValueError, match="Lion"):
        Lion([torch.nn.Parameter(torch.ones(1))], **kwargs)
