"""Building optimizers by name: args applied, Prodigy adapting, clear messages when a package is missing."""

from __future__ import annotations

import sys

import pytest
import torch

from lora_bakery.trainer.optim import (
    OPTIMIZER_NAMES,
    OptimizerArgError,
    OptimizerUnavailable,
    available_optimizers,
    build_optimizer,
    optimizer_kind,
    optimizer_warnings,
)
from lora_bakery.trainer.optim.lion import Lion

PRODIGY_RECIPE = "weight_decay=0.01 decouple=True use_bias_correction=True safeguard_warmup=True d_coef=2"


def _params(n: int = 2) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(4, 3)) for _ in range(n)]


def test_names_are_case_and_separator_insensitive():
    assert optimizer_kind("adamw_8bit").name == "AdamW8bit"
    assert optimizer_kind("ADAMW").name == "AdamW"
    assert optimizer_kind("d-adapt adam").name == "DAdaptAdam"
    with pytest.raises(ValueError, match="unknown optimizer 'Adam9'.*AdamW, AdamW8bit, Prodigy"):
        optimizer_kind("Adam9")


def test_adamw_gets_args_and_per_group_lrs():
    a, b = _params()
    opt = build_optimizer(
        "AdamW",
        [{"params": [a], "lr": 1e-4, "name": "unet"}, {"params": [b], "lr": 5e-5}],
        1e-3,
        ["weight_decay=0.1", "betas=0.9,0.99"],
    )
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 5e-5]
    assert opt.param_groups[0]["name"] == "unet"  # extra keys kept
    assert all(g["weight_decay"] == 0.1 and g["betas"] == (0.9, 0.99) for g in opt.param_groups)
    plain = build_optimizer("adamw", iter([a, b]), 2e-4)
    assert plain.param_groups[0]["lr"] == 2e-4 and len(plain.param_groups[0]["params"]) == 2


def test_sgd_nesterov_defaults_and_override():
    (p,) = _params(1)
    opt = build_optimizer("SGDNesterov", [p], 0.01)
    assert opt.param_groups[0]["nesterov"] is True and opt.param_groups[0]["momentum"] == 0.9
    assert build_optimizer("SGDNesterov", [p], 0.01, "momentum=0.5").param_groups[0]["momentum"] == 0.5
    assert build_optimizer("SGD", [p], 0.01).param_groups[0]["nesterov"] is False


def test_lion_by_name():
    (p,) = _params(1)
    opt = build_optimizer("Lion", [p], 1e-4, {"weight_decay": 0.1})
    assert isinstance(opt, Lion) and opt.param_groups[0]["weight_decay"] == 0.1


def test_bad_arg_error_names_the_optimizer_and_lists_accepted():
    (p,) = _params(1)
    with pytest.raises(OptimizerArgError) as err:
        build_optimizer("Prodigy", [p], 1.0, "dcoef=2")
    assert "Prodigy has no argument 'dcoef'" in str(err.value) and "d_coef" in str(err.value)
    assert "use_bias_correction" in str(err.value)


def test_empty_or_mixed_params_are_refused():
    (p,) = _params(1)
    with pytest.raises(ValueError, match="no parameters to train"):
        build_optimizer("AdamW", [], 1e-4)
    with pytest.raises(ValueError, match="every parameter group is empty"):
        build_optimizer("AdamW", [{"params": []}], 1e-4)
    with pytest.raises(ValueError, match="not a mix"):
        build_optimizer("AdamW", [p, {"params": [p]}], 1e-4)


def _prodigy_d_after(steps: int, args: str) -> list[float]:
    """Prodigy's d after each of ``steps`` steps on a tiny regression (it starts at d0 = 1e-6)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    opt = build_optimizer("Prodigy", model.parameters(), 1.0, args)
    x, y = torch.randn(16, 8), torch.randn(16, 1)
    ds = []
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        ds.append(opt.param_groups[0]["d"])
    return ds


def test_prodigy_recipe_args_apply(capsys):
    pytest.importorskip("prodigyopt")
    opt = build_optimizer("Prodigy", _params(1), 1.0, PRODIGY_RECIPE)
    assert capsys.readouterr().out == ""  # prodigyopt's "Using decoupled weight decay" print is swallowed
    group = opt.param_groups[0]
    assert (group["d_coef"], group["decouple"], group["use_bias_correction"], group["safeguard_warmup"]) == (
        2.0,
        True,
        True,
        True,
    )
    assert group["weight_decay"] == 0.01 and group["lr"] == 1.0


def test_prodigy_adapts_d():
    pytest.importorskip("prodigyopt")
    d = _prodigy_d_after(2, "")
    assert d[0] == 1e-6 and d[1] > 1.2e-6  # the second step already moves lr·d
    # bias correction + safeguard warmup (the recipe) hold d back for a few steps, then it grows
    d = _prodigy_d_after(20, PRODIGY_RECIPE)
    assert d[0] == 1e-6 and d[-1] > 10e-6 and d == sorted(d)


def test_prodigy_refuses_different_group_lrs_before_training():
    pytest.importorskip("prodigyopt")
    a, b = _params()
    with pytest.raises(ValueError, match="learning rates must be equal.*0.5, 1"):
        build_optimizer("Prodigy", [{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.5}], 1.0)
    # a frozen part (lr 0) is fine
    opt = build_optimizer("Prodigy", [{"params": [a], "lr": 1.0}, {"params": [b], "lr": 0.0}], 1.0)
    assert [g["lr"] for g in opt.param_groups] == [1.0, 0.0]


@pytest.mark.parametrize(
    ("name", "module", "words"),
    [
        ("Prodigy", "prodigyopt", ["prodigyopt", "'prodigy'", "install.py", "AdamW"]),
        ("AdamW8bit", "bitsandbytes", ["bitsandbytes", "choose AdamW"]),
        ("DAdaptAdam", "dadaptation", ["dadaptation"]),
    ],
)
def test_missing_package_gives_a_clear_message(monkeypatch, name, module, words):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(OptimizerUnavailable) as err:
        build_optimizer(name, _params(1), 1.0)
    for word in words:
        assert word in str(err.value)
    assert available_optimizers()[name] == str(err.value)


def test_available_optimizers_lists_every_name():
    states = available_optimizers()
    assert list(states) == list(OPTIMIZER_NAMES)
    for name in ("AdamW", "Lion", "SGD", "SGDNesterov"):
        assert states[name] is None


def test_optimizer_warnings():
    assert optimizer_warnings("AdamW", 1e-4) == []
    assert optimizer_warnings("Prodigy", 1.0) == []
    assert "normally 1" in optimizer_warnings("Prodigy", 1e-4)[0]
    assert "very high" in optimizer_warnings("AdamW", 1.0)[0]
    assert "will not change" in optimizer_warnings("Lion", 0.0)[0]


@pytest.mark.parametrize(
    ("name", "lr", "args"),
    [
        ("AdamW", 0.05, ""),
        ("Lion", 0.05, "weight_decay=0.01"),
        ("SGD", 0.1, ""),
        ("SGDNesterov", 0.05, ""),
        ("Prodigy", 1.0, "d_coef=2 decouple=True weight_decay=0.01"),
    ],
)
def test_each_optimizer_with_a_schedule_lowers_a_toy_loss(name, lr, args):
    from lora_bakery.trainer.optim import build_scheduler

    if name == "Prodigy":
        pytest.importorskip("prodigyopt")
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 1)
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 1) + 0.5
    opt = build_optimizer(name, model.parameters(), lr, args)
    sched = build_scheduler("annealed cosine with warmup restarts", opt, 60, warmup=0.1, cycles=2, gamma=0.9)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_fused_only_for_fp32_cuda_tensors_and_never_over_the_users_choice() -> None:
    from lora_bakery.trainer.optim.optimizers import _fused_kwargs

    cpu = [{"params": [torch.nn.Parameter(torch.zeros(2))]}]
    assert _fused_kwargs(torch.optim.AdamW, cpu, {}) == {}
    if torch.cuda.is_available():
        cuda = [{"params": [torch.nn.Parameter(torch.zeros(2, device="cuda"))]}]
        assert _fused_kwargs(torch.optim.AdamW, cuda, {}) == {"fused": True}
        assert _fused_kwargs(torch.optim.AdamW, cuda, {"foreach": False}) == {}
        half = [{"params": [torch.nn.Parameter(torch.zeros(2, device="cuda", dtype=torch.float16))]}]
        assert _fused_kwargs(torch.optim.AdamW, half, {}) == {}
    from lora_bakery.trainer.optim.lion import Lion

    assert _fused_kwargs(Lion, cpu, {}) == {}
