"""The loss pipeline: each formula against a hand computation (reference/kohya-trainer.md §6)."""

from __future__ import annotations

import math

import pytest
import torch

from lora_bakery.trainer.losses import (
    LossOptions,
    apply_masked_loss,
    compute_loss,
    debiased_weight,
    elementwise_loss,
    huber_c,
    mask_from_conditioning_image,
    min_snr_weight,
    per_sample_loss,
    prior_loss_weights,
    scale_v_like_noise_weight,
    timestep_weighting,
    v_pred_like_weight,
)
from lora_bakery.trainer.noise import NoiseSchedule

SCHEDULE = NoiseSchedule.create()


def _snr(t: int) -> float:
    a = SCHEDULE.alphas_cumprod[t].item()
    return a / (1 - a)


def _full(value: float, batch: int = 1) -> torch.Tensor:
    return torch.full((batch, 1, 2, 2), value)


def test_elementwise_losses_by_hand():
    pred, target = _full(3.0), _full(1.0)  # d = 2
    c = torch.tensor([0.5])
    assert elementwise_loss(pred, target, "l2").flatten().tolist() == [4.0] * 4
    assert elementwise_loss(pred, target, "l1").flatten().tolist() == [2.0] * 4
    huber = 2 * 0.5 * (math.sqrt(4 + 0.25) - 0.5)
    smooth = 2 * (math.sqrt(4 + 0.25) - 0.5)
    assert elementwise_loss(pred, target, "huber", c).flatten().tolist() == pytest.approx([huber] * 4)
    assert elementwise_loss(pred, target, "smooth_l1", c).flatten().tolist() == pytest.approx([smooth] * 4)


def test_huber_is_l2_for_small_errors_and_l1_like_for_large():
    c = torch.tensor([1.0])
    small = elementwise_loss(_full(0.1), _full(0.0), "huber", c)
    assert small.flatten()[0].item() == pytest.approx(0.1**2, rel=1e-2)  # 2c(√(d²+c²)−c) ≈ d²
    big = elementwise_loss(_full(1000.0), _full(0.0), "huber", torch.tensor([0.1]))
    assert big.flatten()[0].item() == pytest.approx(2 * 0.1 * 1000, rel=1e-3)  # ≈ 2c|d|


def test_huber_c_is_per_sample():
    pred, target = torch.full((2, 1, 1, 1), 2.0), torch.zeros(2, 1, 1, 1)
    loss = elementwise_loss(pred, target, "huber", torch.tensor([1.0, 0.1])).flatten()
    assert loss.tolist() == pytest.approx([2 * (math.sqrt(5) - 1), 0.2 * (math.sqrt(4.01) - 0.1)])


def test_elementwise_loss_is_float32_and_needs_c_for_huber():
    assert elementwise_loss(_full(1.0).half(), _full(0.0).half()).dtype == torch.float32
    with pytest.raises(ValueError, match="needs the per-sample c"):
        elementwise_loss(_full(1.0), _full(0.0), "huber")
    with pytest.raises(ValueError, match="loss_type"):
        elementwise_loss(_full(1.0), _full(0.0), "l3")


def test_huber_c_schedules_by_hand():
    t = torch.tensor([0, 500, 999])
    constant = huber_c(LossOptions("huber", "constant", huber_c=0.2, huber_scale=3.0), t, SCHEDULE)
    assert constant.tolist() == pytest.approx([0.6] * 3)
    exponential = huber_c(LossOptions("smooth_l1", "exponential", huber_c=0.1, huber_scale=2.0), t, SCHEDULE)
    assert exponential.tolist() == pytest.approx(
        [2.0 * math.exp(math.log(0.1) * s / 1000) for s in (0, 500, 999)]
    )
    assert exponential[1].item() == pytest.approx(2.0 * math.sqrt(0.1))  # halfway: √c
    snr = huber_c(LossOptions("huber", "snr", huber_c=0.1, huber_scale=5.0), t, SCHEDULE)  # scale not applied
    expected = []
    for s in (0, 500, 999):
        a = SCHEDULE.alphas_cumprod[s].item()
        expected.append((1 - 0.1) / (1 + math.sqrt((1 - a) / a)) ** 2 + 0.1)
    assert snr.tolist() == pytest.approx(expected, rel=1e-5)
    assert expected[0] > 0.9 and expected[2] < 0.11  # ≈ L2 at low noise, ≈ c at high noise
    assert huber_c(LossOptions("l2"), t, SCHEDULE) is None


def test_huber_snr_schedule_with_zero_terminal_snr_reaches_c():
    schedule = NoiseSchedule.create(zero_terminal_snr=True)
    c = huber_c(LossOptions("huber", "snr", huber_c=0.1), torch.tensor([999]), schedule)
    assert c.item() == pytest.approx(0.1)  # σ = ∞ at T


def test_masked_loss_area_resizes_the_mask():
    loss = torch.ones(2, 4, 2, 2)
    mask = torch.zeros(2, 8, 8)  # pixel size: 4× the latent grid
    mask[0, :, :4] = 1.0  # left half
    mask[1, :2, :2] = 1.0  # a quarter of the top-left latent cell
    out = apply_masked_loss(loss, mask)
    assert out[0, 0].tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert out[1, 0].tolist() == [[0.25, 0.0], [0.0, 0.0]]
    assert torch.equal(apply_masked_loss(loss, mask.unsqueeze(1)), out)  # (B, 1, H, W) too
    with pytest.raises(ValueError, match="mask must be"):
        apply_masked_loss(loss, torch.ones(2, 3, 8, 8))


def test_mask_from_conditioning_image_uses_red_channel():
    image = torch.stack([torch.full((2, 2), v) for v in (-1.0, 1.0, 1.0)]).unsqueeze(0)
    image[0, 0, 0, 0] = 1.0
    assert mask_from_conditioning_image(image)[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]


def test_timestep_weights_by_hand():
    snr = torch.tensor([0.5, 10.0])
    assert min_snr_weight(snr, 5.0, v_prediction=False).tolist() == pytest.approx([1.0, 0.5])
    assert min_snr_weight(snr, 5.0, v_prediction=True).tolist() == pytest.approx([0.5 / 1.5, 5 / 11])
    assert scale_v_like_noise_weight(snr).tolist() == pytest.approx([0.5 / 1.5, 10 / 11])
    assert v_pred_like_weight(snr, 0.2).tolist() == pytest.approx([1 + 0.2 * 3.0, 1 + 0.2 * 1.1])
    assert debiased_weight(snr, v_prediction=False).tolist() == pytest.approx(
        [1 / math.sqrt(0.5), 1 / math.sqrt(10)]
    )
    assert debiased_weight(snr, v_prediction=True).tolist() == pytest.approx([1 / 1.5, 1 / 11])


def test_timestep_weighting_uses_unclamped_snr_for_min_snr_and_clamped_elsewhere():
    t = torch.tensor([0, 600])
    snr = [_snr(0), _snr(600)]
    assert snr[0] > 1000 > snr[1]
    loss = torch.tensor([2.0, 3.0])
    got = timestep_weighting(loss, t, SCHEDULE, LossOptions(min_snr_gamma=5), v_prediction=False)
    assert got.tolist() == pytest.approx([2.0 * 5 / snr[0], 3.0 * min(snr[1], 5) / snr[1]], rel=1e-5)
    got = timestep_weighting(
        loss, t, SCHEDULE, LossOptions(debiased_estimation_loss=True), v_prediction=False
    )
    assert got.tolist() == pytest.approx([2.0 / math.sqrt(1000), 3.0 / math.sqrt(snr[1])], rel=1e-5)
    opts = LossOptions(min_snr_gamma=5, scale_v_pred_loss_like_noise_pred=True, debiased_estimation_loss=True)
    got = timestep_weighting(loss, t, SCHEDULE, opts, v_prediction=True)
    expected = []
    for value, s in zip(loss.tolist(), snr):
        sc = min(s, 1000)
        expected.append(value * (min(s, 5) / (s + 1)) * (sc / (sc + 1)) * (1 / (sc + 1)))
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    opts = LossOptions(v_pred_like_loss=0.1)
    got = timestep_weighting(loss, t, SCHEDULE, opts, v_prediction=False)
    assert got.tolist() == pytest.approx(
        [v + 0.1 * v * (min(s, 1000) + 1) / min(s, 1000) for v, s in zip(loss.tolist(), snr)], rel=1e-5
    )


def test_per_sample_loss_full_pipeline_by_hand():
    # sample 0: training image, error 1 everywhere, left half masked in; sample 1: reg image, error 2
    pred = torch.stack([torch.full((4, 2, 2), 1.0), torch.full((4, 2, 2), 2.0)])
    target = torch.zeros_like(pred)
    mask = torch.ones(2, 16, 16)
    mask[0, :, 8:] = 0.0
    t = torch.tensor([300, 700])
    weights = prior_loss_weights([False, True], prior_loss_weight=0.5)
    assert weights.tolist() == [1.0, 0.5]
    opts = LossOptions(min_snr_gamma=5.0)
    got = per_sample_loss(pred, target, t, SCHEDULE, opts, mask=mask, loss_weights=weights)
    snr = [_snr(300), _snr(700)]
    mse = [1.0 * 0.5, 4.0 * 1.0]  # mean over C, H, W after the mask
    expected = [mse[0] * 1.0 * min(snr[0], 5) / snr[0], mse[1] * 0.5 * min(snr[1], 5) / snr[1]]
    assert got.tolist() == pytest.approx(expected, rel=1e-5)
    total = compute_loss(pred, target, t, SCHEDULE, opts, mask=mask, loss_weights=weights)
    assert total.item() == pytest.approx(sum(expected) / 2, rel=1e-5)
    assert total.dtype == torch.float32 and total.ndim == 0


def test_compute_loss_plain_l2_equals_mse():
    pred, target = torch.randn(3, 4, 8, 8), torch.randn(3, 4, 8, 8)
    got = compute_loss(pred, target, torch.tensor([1, 2, 3]), SCHEDULE)
    assert got.item() == pytest.approx(torch.nn.functional.mse_loss(pred, target).item(), rel=1e-6)


def test_compute_loss_backpropagates():
    pred = torch.randn(2, 4, 4, 4, requires_grad=True)
    opts = LossOptions(loss_type="huber", huber_schedule="snr", min_snr_gamma=5)
    compute_loss(pred, torch.zeros(2, 4, 4, 4), torch.tensor([10, 900]), SCHEDULE, opts).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_options_that_do_not_fit_the_prediction_type_are_refused():
    pred = torch.zeros(1, 4, 2, 2)
    t = torch.tensor([5])
    with pytest.raises(ValueError, match="scale_v_pred_loss_like_noise_pred"):
        compute_loss(pred, pred, t, SCHEDULE, LossOptions(scale_v_pred_loss_like_noise_pred=True))
    with pytest.raises(ValueError, match="v_pred_like_loss"):
        compute_loss(pred, pred, t, SCHEDULE, LossOptions(v_pred_like_loss=0.1), v_prediction=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"loss_type": "mse"}, "loss_type"),
        ({"huber_schedule": "cosine"}, "huber_schedule"),
        ({"huber_c": 0.0}, "huber_c"),
        ({"min_snr_gamma": -1.0}, "min_snr_gamma"),
    ],
)
def test_loss_options_reject_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossOptions(**kwargs)
