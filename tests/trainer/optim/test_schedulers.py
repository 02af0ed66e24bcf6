"""Every schedule's shape at key steps, by hand; the transformers ones also against transformers."""

from __future__ import annotations

import math

import pytest
import torch

from lora_bakery.trainer.optim import (
    SCHEDULER_NAMES,
    build_optimizer,
    build_scheduler,
    lr_at,
    lr_curve,
    resolve_warmup,
    scheduler_name,
    scheduler_warnings,
)

ANNEALED = "annealed_cosine_with_warmup_restarts"


def _optimizer(*lrs: float) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in lrs]
    return build_optimizer("SGD", groups, lrs[0])


def _stepped(scheduler, optimizer, steps: int) -> list[float]:
    """The lr of each group used by each of ``steps`` optimizer steps, flattened step by step."""
    out = []
    for _ in range(steps):
        out.extend(g["lr"] for g in optimizer.param_groups)
        optimizer.step()
        scheduler.step()
    return out


# total 10 steps, warmup 2, base lr 1
HAND = {
    "constant": {0: 1.0, 1: 1.0, 5: 1.0, 9: 1.0},
    "constant_with_warmup": {0: 0.0, 1: 0.5, 2: 1.0, 9: 1.0},
    "linear": {0: 0.0, 1: 0.5, 2: 1.0, 3: 0.875, 6: 0.5, 9: 0.125, 10: 0.0},
    "cosine": {0: 0.0, 1: 0.5, 2: 1.0, 4: 0.5 * (1 + math.cos(math.pi / 4)), 6: 0.5, 10: 0.0},
    "cosine_with_restarts": {
        0: 0.0,
        1: 0.5,
        2: 1.0,
        4: 0.5,
        5: 0.5 * (1 + math.cos(math.pi * 0.75)),
        6: 1.0,
        8: 0.5,
        10: 0.0,
    },
}


@pytest.mark.parametrize("name", list(HAND))
def test_transformers_schedules_by_hand(name):
    for step, expected in HAND[name].items():
        assert lr_at(name, step, 1.0, 10, warmup=2, cycles=2) == pytest.approx(expected), step


def test_polynomial_by_hand():
    end = 1e-7  # transformers' lr_end default, which kohya keeps
    kw = {"warmup": 2, "power": 2.0}
    got = [lr_at("polynomial", s, 1.0, 10, **kw) for s in (0, 1, 2, 6, 10, 11)]
    assert got == pytest.approx([0.0, 0.5, 1.0, (1 - end) * 0.25 + end, end, end], abs=1e-12)
    assert lr_at("polynomial", 6, 2.0, 10, warmup=2, power=2.0) == pytest.approx((2 - end) * 0.25 + end)
    assert lr_at("polynomial", 5, 1.0, 10) == pytest.approx((1 - end) * 0.5 + end)
    assert lr_at("polynomial", 5, 1.0, 10, min_lr=0.5) == lr_at(
        "polynomial", 5, 1.0, 10
    )  # min_lr is not used
    with pytest.raises(ValueError, match="polynomial ends at 1e-07"):
        build_scheduler("polynomial", _optimizer(1e-8), 10)


def test_annealed_cosine_with_warmup_restarts_by_hand():
    # 12 steps, 3 cycles of 4 steps, warmup 3 → 1 step per cycle, peak halves per cycle, floor 0.1
    curve = lr_curve(ANNEALED, 1.0, 12, warmup=3, cycles=3, gamma=0.5, min_lr=0.1)
    expected = []
    for peak in (1.0, 0.5, 0.25):
        span = peak - 0.1
        expected += [0.1, peak, 0.1 + span * 0.75, 0.1 + span * 0.25]  # warmup, then (1+cos(π·s/3))/2
    assert curve == pytest.approx(expected)


def test_annealed_cosine_details():
    # no warmup: each cycle starts at its peak; default floor 1e-6
    assert lr_at(ANNEALED, 0, 1.0, 8, cycles=2) == 1.0
    assert lr_at(ANNEALED, 2, 1.0, 8, cycles=2) == pytest.approx(1e-6 + (1 - 1e-6) * 0.5)
    assert lr_at(ANNEALED, 4, 1.0, 8, cycles=2, gamma=0.9) == pytest.approx(0.9)
    # a peak decayed below the floor stays at the floor
    assert lr_at(ANNEALED, 4, 1.0, 8, cycles=2, gamma=0.05, min_lr=0.1) == 0.1
    # warmup as a fraction: 0.25 of 8 = 2 steps → 1 per cycle
    assert lr_at(ANNEALED, 4, 1.0, 8, warmup=0.25, cycles=2, min_lr=0.0) == 0.0
    with pytest.raises(ValueError, match="warmup per cycle"):
        lr_at(ANNEALED, 0, 1.0, 8, warmup=8, cycles=2)


def test_matches_transformers():
    from transformers.optimization import (
        get_constant_schedule,
        get_constant_schedule_with_warmup,
        get_cosine_schedule_with_warmup,
        get_cosine_with_hard_restarts_schedule_with_warmup,
        get_linear_schedule_with_warmup,
        get_polynomial_decay_schedule_with_warmup,
    )

    total, warmup = 23, 4
    theirs = {
        "constant": lambda o: get_constant_schedule(o),
        "constant_with_warmup": lambda o: get_constant_schedule_with_warmup(o, warmup),
        "linear": lambda o: get_linear_schedule_with_warmup(o, warmup, total),
        "cosine": lambda o: get_cosine_schedule_with_warmup(o, warmup, total),
        "cosine_with_restarts": lambda o: get_cosine_with_hard_restarts_schedule_with_warmup(
            o, warmup, total, 3
        ),
        "polynomial": lambda o: get_polynomial_decay_schedule_with_warmup(o, warmup, total, power=1.5),
    }
    for name, make in theirs.items():
        opt_a, opt_b = _optimizer(3e-4), _optimizer(3e-4)
        ours = build_scheduler(
            name, opt_a, total, warmup=warmup if name != "constant" else 0, cycles=3, power=1.5
        )
        got, expected = _stepped(ours, opt_a, total + 2), _stepped(make(opt_b), opt_b, total + 2)
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15), name


def test_scheduler_scales_each_group_and_keeps_zero_groups_at_zero():
    opt = _optimizer(1.0, 0.5, 0.0)
    sched = build_scheduler(ANNEALED, opt, 12, warmup=3, cycles=3, gamma=0.5, min_lr=0.0)
    lrs = _stepped(sched, opt, 12)
    for step, (a, b, c) in enumerate(zip(lrs[::3], lrs[1::3], lrs[2::3])):
        assert a == pytest.approx(lr_at(ANNEALED, step, 1.0, 12, warmup=3, cycles=3, gamma=0.5, min_lr=0.0))
        assert b == pytest.approx(lr_at(ANNEALED, step, 0.5, 12, warmup=3, cycles=3, gamma=0.5, min_lr=0.0))
        assert c == 0.0


@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_resume_from_state_gives_the_same_lrs(name):
    kw = {"warmup": 2, "cycles": 2, "power": 2.0, "min_lr": 1e-5}
    opt = _optimizer(2e-4, 1e-4)
    full = _stepped(build_scheduler(name, opt, 12, **kw), opt, 12)

    opt = _optimizer(2e-4, 1e-4)
    sched = build_scheduler(name, opt, 12, **kw)
    first = _stepped(sched, opt, 5)
    state = {"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}

    opt2 = _optimizer(2e-4, 1e-4)
    sched2 = build_scheduler(name, opt2, 12, **kw)
    opt2.load_state_dict(state["optimizer"])
    sched2.load_state_dict(state["scheduler"])
    assert first + _stepped(sched2, opt2, 7) == pytest.approx(full)


def test_names_and_aliases():
    assert scheduler_name("Cosine with restarts") == "cosine_with_restarts"
    assert scheduler_name("CosineAnnealingWarmRestarts") == ANNEALED
    assert scheduler_name("annealed cosine with warmup restarts") == ANNEALED
    with pytest.raises(ValueError, match="unknown lr scheduler 'cosine_forever'.*constant_with_warmup"):
        scheduler_name("cosine_forever")


def test_resolve_warmup():
    assert resolve_warmup(0, 100) == 0
    assert resolve_warmup(7, 100) == 7
    assert resolve_warmup(0.05, 100) == 5
    assert resolve_warmup(0.259, 10) == 2  # int(), as kohya
    assert resolve_warmup(3.0, 100) == 3
    with pytest.raises(ValueError, match="fraction"):
        resolve_warmup(2.5, 100)
    with pytest.raises(ValueError, match="0 or more"):
        resolve_warmup(-1, 100)


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("linear", {"warmup": 11}, "longer than the training"),
        ("cosine_with_restarts", {"cycles": 0}, "cycles"),
        (ANNEALED, {"cycles": 11}, "cannot exceed"),
        ("polynomial", {"power": 0.0}, "power"),
        (ANNEALED, {"gamma": 0.0}, "gamma"),
        ("cosine", {"min_lr": -1.0}, "min_lr"),
    ],
)
def test_bad_settings_fail_when_the_scheduler_is_built(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_scheduler(name, _optimizer(1.0), 10, **kwargs)


def test_total_steps_must_be_positive():
    with pytest.raises(ValueError, match="total_steps"):
        build_scheduler("constant", _optimizer(1.0), 0)


def test_scheduler_warnings():
    assert scheduler_warnings("constant") == []
    assert "constant_with_warmup" in scheduler_warnings("constant", warmup=0.1)[0]
    assert "ignores cycles" in scheduler_warnings("cosine", cycles=3)[0]
    assert scheduler_warnings(ANNEALED, warmup=5, cycles=3) == []
