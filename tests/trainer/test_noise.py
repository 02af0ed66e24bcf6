"""Forward diffusion: each formula against a hand computation, the schedule against diffusers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lora_bakery.trainer.models.schedule import noise_scheduler_config
from lora_bakery.trainer.noise import (
    NoiseOptions,
    NoiseSchedule,
    apply_noise_offset,
    clamped_snr,
    noise_latents,
    pyramid_noise_like,
    rescale_zero_terminal_snr,
    sample_timesteps,
    scaled_linear_betas,
    sigma,
)


def _hand_alphas_cumprod() -> list[float]:
    """ᾱ_t in float64 from the LDM config: √β linear from √0.00085 to √0.012 over 1000 steps."""
    lo, hi = math.sqrt(0.00085), math.sqrt(0.012)
    out, prod = [], 1.0
    for i in range(1000):
        beta = (lo + (hi - lo) * i / 999) ** 2
        prod *= 1 - beta
        out.append(prod)
    return out


HAND = _hand_alphas_cumprod()


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_betas_and_alphas_cumprod_match_hand_computation():
    betas = scaled_linear_betas()
    assert betas.dtype == torch.float32 and betas.shape == (1000,)
    assert betas[0].item() == pytest.approx(0.00085, rel=1e-6)
    assert betas[-1].item() == pytest.approx(0.012, rel=1e-6)
    schedule = NoiseSchedule.create()
    for t in (0, 1, 250, 500, 999):
        assert schedule.alphas_cumprod[t].item() == pytest.approx(HAND[t], rel=1e-5)
        assert schedule.snr(torch.tensor([t])).item() == pytest.approx(HAND[t] / (1 - HAND[t]), rel=1e-4)


def test_schedule_equals_diffusers_ddpm_bit_for_bit():
    from diffusers import DDPMScheduler

    ours = NoiseSchedule.create()
    theirs = DDPMScheduler.from_config(noise_scheduler_config("sd1"))
    assert torch.equal(ours.alphas_cumprod, theirs.alphas_cumprod)
    x, n = torch.randn(3, 4, 8, 8, generator=_gen(1)), torch.randn(3, 4, 8, 8, generator=_gen(2))
    t = torch.tensor([0, 437, 999])
    assert torch.equal(ours.add_noise(x, n, t), theirs.add_noise(x, n, t))
    assert torch.equal(ours.velocity(x, n, t), theirs.get_velocity(x, n, t))


def test_add_noise_velocity_and_target_by_hand():
    schedule = NoiseSchedule.create()
    x, n = torch.full((2, 1, 2, 2), 1.0), torch.full((2, 1, 2, 2), 2.0)
    t = torch.tensor([10, 800])
    noisy, v = schedule.add_noise(x, n, t), schedule.velocity(x, n, t)
    for i, step in enumerate((10, 800)):
        a = HAND[step]
        assert noisy[i].flatten().tolist() == pytest.approx(
            [math.sqrt(a) + 2 * math.sqrt(1 - a)] * 4, rel=1e-5
        )
        assert v[i].flatten().tolist() == pytest.approx([2 * math.sqrt(a) - math.sqrt(1 - a)] * 4, rel=1e-5)
    assert schedule.target(x, n, t, v_prediction=False) is n
    assert torch.equal(schedule.target(x, n, t, v_prediction=True), v)


def test_add_noise_keeps_half_precision():
    schedule = NoiseSchedule.create()
    x = torch.randn(2, 4, 4, 4).half()
    assert schedule.add_noise(x, torch.randn_like(x), torch.tensor([1, 2])).dtype == torch.float16


def test_zero_terminal_snr_rescale_by_hand_and_against_diffusers():
    from diffusers import DDPMScheduler

    schedule = NoiseSchedule.create(zero_terminal_snr=True)
    assert schedule.alphas_cumprod[-1].item() == 0.0  # zero SNR at T
    assert schedule.betas[-1].item() == pytest.approx(1.0)
    # √ᾱ is shifted and scaled so √ᾱ_0 stays and √ᾱ_T becomes 0: check a middle step by hand
    s0, sT, s500 = math.sqrt(HAND[0]), math.sqrt(HAND[-1]), math.sqrt(HAND[500])
    expected = ((s500 - sT) * s0 / (s0 - sT)) ** 2
    assert schedule.alphas_cumprod[500].item() == pytest.approx(expected, rel=1e-4)
    assert schedule.alphas_cumprod[0].item() == pytest.approx(HAND[0], rel=1e-6)
    theirs = DDPMScheduler.from_config({**noise_scheduler_config("sd1"), "rescale_betas_zero_snr": True})
    assert torch.allclose(schedule.betas, theirs.betas, atol=1e-7)
    # kohya quirk: the SNR used for weighting is the original schedule's (finite at T)
    assert schedule.snr(torch.tensor([999])).item() == pytest.approx(HAND[999] / (1 - HAND[999]), rel=1e-4)
    assert rescale_zero_terminal_snr(scaled_linear_betas()).shape == (1000,)


def test_clamped_snr_and_sigma():
    schedule = NoiseSchedule.create()
    t = torch.tensor([0, 999])
    snr0 = HAND[0] / (1 - HAND[0])
    assert snr0 > 1000
    assert clamped_snr(schedule, t).tolist() == pytest.approx([1000.0, HAND[999] / (1 - HAND[999])], rel=1e-4)
    assert sigma(schedule, t).tolist() == pytest.approx(
        [math.sqrt((1 - a) / a) for a in (HAND[0], HAND[999])], rel=1e-4
    )


def test_noise_offset_by_hand():
    latents = torch.randn(2, 4, 8, 8, generator=_gen(3))
    noise = torch.randn(2, 4, 8, 8, generator=_gen(4))
    out = apply_noise_offset(latents, noise, 0.1, generator=_gen(5))
    expected = noise + 0.1 * torch.randn(2, 4, 1, 1, generator=_gen(5))
    assert torch.allclose(out, expected)
    shift = out - noise  # constant over H, W per (sample, channel)
    assert torch.allclose(shift, shift[:, :, :1, :1].expand_as(shift), atol=1e-7)


def test_adaptive_noise_offset_by_hand():
    means = torch.tensor([0.5, -2.0, 0.0, 1.0])
    latents = means.view(1, 4, 1, 1).expand(1, 4, 4, 4).clone()
    noise = torch.zeros(1, 4, 4, 4)
    out = apply_noise_offset(latents, noise, 0.1, adaptive_noise_scale=0.2, generator=_gen(6))
    draws = torch.randn(1, 4, 1, 1, generator=_gen(6))
    offsets = 0.1 + 0.2 * means.abs()  # o + a·|mean|
    assert torch.allclose(out[:, :, 0, 0], (offsets * draws.flatten()).view(1, 4))
    # a negative scale that would push the offset below 0 is clamped to 0
    clamped = apply_noise_offset(latents, noise, 0.1, adaptive_noise_scale=-1.0, generator=_gen(6))
    assert torch.allclose(clamped[0, 0], torch.zeros(4, 4))  # 0.1 − 0.5 < 0 → 0
    assert torch.allclose(clamped[0, 2], torch.full((4, 4), 0.1 * draws[0, 2, 0, 0].item()))  # mean 0 → 0.1


def test_pyramid_noise_one_level_by_hand():
    noise = torch.randn(2, 3, 8, 8, generator=_gen(7))
    before = noise.clone()
    out = pyramid_noise_like(noise, iterations=1, discount=0.3, generator=_gen(8))
    g = _gen(8)
    torch.rand((), generator=g)  # r (unused at level 0: r⁰ = 1)
    total = noise + torch.randn(2, 3, 8, 8, generator=g)
    assert torch.allclose(out, total / total.std(), atol=1e-6)
    assert torch.equal(noise, before)  # input untouched (kohya adds in place)


def test_pyramid_noise_stops_at_one_pixel_and_discounts():
    noise = torch.randn(1, 2, 2, 2, generator=_gen(9))
    out = pyramid_noise_like(noise, iterations=10, discount=0.5, generator=_gen(10))
    g = _gen(10)
    torch.rand((), generator=g)
    level0 = torch.randn(1, 2, 2, 2, generator=g)
    torch.rand((), generator=g)  # r ∈ [2, 4): 2 / r < 2 → 1×1 level, then stop
    level1 = torch.randn(1, 2, 1, 1, generator=g)
    total = noise + level0 + level1.expand(1, 2, 2, 2) * 0.5
    assert torch.allclose(out, total / total.std(), atol=1e-6)
    assert out.std().item() == pytest.approx(1.0, abs=1e-5)


def test_pyramid_noise_lower_levels_are_upsampled_bilinearly():
    noise = torch.zeros(1, 1, 16, 16)
    out = pyramid_noise_like(noise, iterations=2, discount=0.5, generator=_gen(11))
    g = _gen(11)
    torch.rand((), generator=g)
    level0 = torch.randn(1, 1, 16, 16, generator=g)
    r = float(torch.rand((), generator=g)) * 2 + 2
    side = int(16 / r)
    level1 = torch.randn(1, 1, side, side, generator=g)
    total = level0 + F.interpolate(level1, size=(16, 16), mode="bilinear") * 0.5
    assert torch.allclose(out, total / total.std(), atol=1e-6)


def test_sample_timesteps_bounds():
    t = sample_timesteps(4096, 100, 200, generator=_gen(12))
    assert t.dtype == torch.int64 and t.min().item() >= 100 and t.max().item() <= 199
    assert set(sample_timesteps(64, 5, 6).tolist()) == {5}
    with pytest.raises(ValueError, match="min_timestep"):
        sample_timesteps(1, 10, 10)


def test_noise_latents_plain_draw_order():
    schedule = NoiseSchedule.create()
    latents = torch.randn(3, 4, 8, 8, generator=_gen(13))
    batch = noise_latents(latents, schedule, NoiseOptions(), _gen(14))
    g = _gen(14)
    noise = torch.randn(3, 4, 8, 8, generator=g)
    t = torch.randint(0, 1000, (3,), generator=g)
    assert torch.equal(batch.noise, noise) and torch.equal(batch.timesteps, t)
    assert torch.equal(batch.noisy_latents, schedule.add_noise(latents, noise, t))


def test_noise_latents_all_options_in_kohya_order():
    schedule = NoiseSchedule.create()
    latents = torch.randn(2, 4, 8, 8, generator=_gen(15))
    options = NoiseOptions(
        noise_offset=0.1,
        noise_offset_random_strength=True,
        multires_noise_iterations=1,
        multires_noise_discount=0.3,
        ip_noise_gamma=0.2,
        ip_noise_gamma_random_strength=True,
        min_timestep=100,
        max_timestep=300,
    )
    batch = noise_latents(latents, schedule, options, _gen(16))
    g = _gen(16)
    noise = torch.randn(2, 4, 8, 8, generator=g)
    offset = torch.rand(1, generator=g) * 0.1  # random strength: U(0, o)
    noise = noise + offset * torch.randn(2, 4, 1, 1, generator=g)
    torch.rand((), generator=g)
    noise = noise + torch.randn(2, 4, 8, 8, generator=g)
    noise = noise / noise.std()
    t = torch.randint(100, 300, (2,), generator=g)
    gamma = torch.rand(1, generator=g) * 0.2
    perturbed = noise + gamma * torch.randn(2, 4, 8, 8, generator=g)
    assert torch.allclose(batch.noise, noise, atol=1e-6)  # the target excludes the ip perturbation
    assert torch.equal(batch.timesteps, t)
    assert torch.allclose(batch.noisy_latents, schedule.add_noise(latents, perturbed, t), atol=1e-6)


def test_none_means_off_as_in_kohya():
    schedule = NoiseSchedule.create()
    latents = torch.randn(2, 4, 8, 8)
    off = NoiseOptions(
        noise_offset=None, multires_noise_iterations=None, ip_noise_gamma=None, max_timestep=None
    )
    a, b = (
        noise_latents(latents, schedule, off, _gen(18)),
        noise_latents(latents, schedule, NoiseOptions(), _gen(18)),
    )
    assert torch.equal(a.noisy_latents, b.noisy_latents)
    zero = NoiseOptions(noise_offset=0.0, multires_noise_iterations=0, ip_noise_gamma=0.0)
    assert torch.equal(noise_latents(latents, schedule, zero, _gen(18)).noisy_latents, a.noisy_latents)


def test_noise_latents_is_deterministic_with_a_seed():
    schedule = NoiseSchedule.create()
    latents = torch.randn(2, 4, 8, 8)
    options = NoiseOptions(noise_offset=0.05, multires_noise_iterations=3, ip_noise_gamma=0.1)
    a, b = (noise_latents(latents, schedule, options, _gen(17)) for _ in range(2))
    assert torch.equal(a.noisy_latents, b.noisy_latents) and torch.equal(a.timesteps, b.timesteps)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"noise_offset": -0.1}, "noise_offset"),
        ({"ip_noise_gamma": -1}, "ip_noise_gamma"),
        ({"adaptive_noise_scale": 0.1}, "needs noise_offset"),
        ({"min_timestep": 500, "max_timestep": 500}, "max_timestep"),
    ],
)
def test_noise_options_reject_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NoiseOptions(**kwargs)


def test_max_timestep_beyond_schedule_is_rejected():
    with pytest.raises(ValueError, match="exceeds"):
        noise_latents(torch.zeros(1, 4, 2, 2), NoiseSchedule.create(), NoiseOptions(max_timestep=1001))
