"""Forward diffusion for training: the noise schedule, noise variants, timesteps and targets.

Every formula here is kohya sd-scripts' (``library/custom_train_functions.py`` and
``library/train_util.py``, summarised in ``reference/kohya-trainer.md`` §6), so a LoRA trained with
the same options learns the same thing it would under kohya. Where kohya mutates its inputs or
uses Python's global ``random`` we do not: every function returns new tensors and draws from an
optional ``torch.Generator``, which makes a run reproducible from one seed.

The schedule is SD's DDPM schedule (1000 steps, ``scaled_linear`` betas 0.00085 → 0.012), built
the way diffusers' ``DDPMScheduler`` builds it, so :meth:`NoiseSchedule.add_noise` and
:meth:`NoiseSchedule.velocity` equal ``DDPMScheduler.add_noise`` / ``get_velocity`` bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

NUM_TRAIN_TIMESTEPS = 1000
BETA_START = 0.00085
BETA_END = 0.012
# kohya clamps the SNR at 1000 before the v-pred-like, scale-v and debiased weightings, because the
# SNR at t=0 is ~1e3..1e4 and 1/√SNR or (SNR+1)/SNR would otherwise swing the loss (get_snr_scale).
SNR_CLAMP = 1000.0


def scaled_linear_betas(
    num_train_timesteps: int = NUM_TRAIN_TIMESTEPS, beta_start: float = BETA_START, beta_end: float = BETA_END
) -> torch.Tensor:
    """SD's ``scaled_linear`` betas: linear in √β, squared (diffusers ``DDPMScheduler``, float32).

    Args:
        num_train_timesteps (`int`, defaults to 1000): T.
        beta_start (`float`, defaults to 0.00085): β at t=0.
        beta_end (`float`, defaults to 0.012): β at t=T-1.

    Returns:
        `torch.Tensor`: float32 betas of shape ``(T,)``.
    """
    return torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2


def rescale_zero_terminal_snr(betas: torch.Tensor) -> torch.Tensor:
    """Rescale betas so the last timestep has zero SNR (Lin et al. 2023, "Common Diffusion Noise
    Schedules and Sample Steps are Flawed", Algorithm 1; kohya ``fix_noise_scheduler_betas_for_zero_terminal_snr``).

    Shifts √ᾱ so its last value is 0 and scales it so its first value is unchanged; then recovers
    the betas from the new ᾱ.

    Args:
        betas (`torch.Tensor`): betas of shape ``(T,)``.

    Returns:
        `torch.Tensor`: the rescaled betas (a new tensor; the last one is exactly 1).
    """
    alphas_bar_sqrt = (1.0 - betas).cumprod(0).sqrt()
    first, last = alphas_bar_sqrt[0].clone(), alphas_bar_sqrt[-1].clone()
    alphas_bar_sqrt = (alphas_bar_sqrt - last) * (first / (first - last))
    alphas_bar = alphas_bar_sqrt**2
    alphas = torch.cat([alphas_bar[0:1], alphas_bar[1:] / alphas_bar[:-1]])
    return 1.0 - alphas


def _per_sample(values: torch.Tensor, timesteps: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[timesteps]`` in ``like``'s dtype/device, shaped ``(B, 1, 1, 1)`` to broadcast over it."""
    out = values.to(device=like.device, dtype=like.dtype)[timesteps.to(like.device)].flatten()
    return out.reshape(out.shape[0], *([1] * (like.ndim - 1)))


@dataclass(frozen=True)
class NoiseSchedule:
    """The DDPM training schedule, plus the SNR table kohya weights losses with.

    Build it with :meth:`create`. Tensors live on the CPU in float32; methods move what they need
    to the latents' device and dtype.

    Attributes:
        betas (`torch.Tensor`): ``(T,)``, after the zero-terminal-SNR fix when enabled.
        alphas_cumprod (`torch.Tensor`): ᾱ, ``(T,)``, from ``betas``.
        all_snr (`torch.Tensor`): ᾱ/(1−ᾱ) of the **original** schedule. kohya computes it before
            applying zero terminal SNR (``prepare_scheduler_for_custom_training`` runs first), so
            min-SNR and debiased weighting keep the original SNRs; this also keeps the last
            timestep's SNR finite where the fixed schedule's is 0.
        zero_terminal_snr (`bool`): whether ``betas`` were rescaled.
    """

    betas: torch.Tensor
    alphas_cumprod: torch.Tensor
    all_snr: torch.Tensor
    zero_terminal_snr: bool = False

    @classmethod
    def create(
        cls,
        *,
        zero_terminal_snr: bool = False,
        num_train_timesteps: int = NUM_TRAIN_TIMESTEPS,
        beta_start: float = BETA_START,
        beta_end: float = BETA_END,
    ) -> NoiseSchedule:
        """Build SD's schedule (optionally with zero terminal SNR, for v-prediction models).

        Args:
            zero_terminal_snr (`bool`, defaults to `False`): rescale the betas (:func:`rescale_zero_terminal_snr`).
            num_train_timesteps (`int`, defaults to 1000): T.
            beta_start (`float`, defaults to 0.00085): first β.
            beta_end (`float`, defaults to 0.012): last β.

        Returns:
            `NoiseSchedule`
        """
        betas = scaled_linear_betas(num_train_timesteps, beta_start, beta_end)
        original = torch.cumprod(1.0 - betas, dim=0)
        all_snr = (original.sqrt() / (1.0 - original).sqrt()) ** 2
        if zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        return cls(betas, torch.cumprod(1.0 - betas, dim=0), all_snr, zero_terminal_snr)

    @property
    def num_train_timesteps(self) -> int:
        return int(self.betas.shape[0])

    def snr(self, timesteps: torch.Tensor) -> torch.Tensor:
        """SNR used for loss weighting (kohya ``all_snr[t]``), float32 on the timesteps' device.

        Args:
            timesteps (`torch.Tensor`): integer timesteps ``(B,)``.

        Returns:
            `torch.Tensor`: ``(B,)``.
        """
        return self.all_snr.to(timesteps.device)[timesteps]

    def add_noise(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε (diffusers ``DDPMScheduler.add_noise``, same dtype handling).

        Args:
            latents (`torch.Tensor`): x₀, ``(B, C, H, W)``.
            noise (`torch.Tensor`): ε, same shape.
            timesteps (`torch.Tensor`): integer ``(B,)``.

        Returns:
            `torch.Tensor`: noisy latents in ``latents``' dtype.
        """
        sqrt_alpha = _per_sample(self.alphas_cumprod, timesteps, latents) ** 0.5
        sqrt_one_minus = (1 - _per_sample(self.alphas_cumprod, timesteps, latents)) ** 0.5
        return sqrt_alpha * latents + sqrt_one_minus * noise

    def velocity(self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """v-prediction target v = √ᾱ_t·ε − √(1−ᾱ_t)·x₀ (Salimans & Ho 2022; diffusers ``get_velocity``).

        Args:
            latents (`torch.Tensor`): x₀.
            noise (`torch.Tensor`): ε (the plain noise, never the ip-noise-gamma perturbed one).
            timesteps (`torch.Tensor`): integer ``(B,)``.

        Returns:
            `torch.Tensor`: v, same shape and dtype as ``latents``.
        """
        sqrt_alpha = _per_sample(self.alphas_cumprod, timesteps, latents) ** 0.5
        sqrt_one_minus = (1 - _per_sample(self.alphas_cumprod, timesteps, latents)) ** 0.5
        return sqrt_alpha * noise - sqrt_one_minus * latents

    def target(
        self, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, *, v_prediction: bool
    ) -> torch.Tensor:
        """What the U-Net should predict: ε for eps models, v for v-prediction models.

        Args:
            latents (`torch.Tensor`): x₀.
            noise (`torch.Tensor`): ε.
            timesteps (`torch.Tensor`): integer ``(B,)``.
            v_prediction (`bool`): the model predicts v.

        Returns:
            `torch.Tensor`
        """
        return self.velocity(latents, noise, timesteps) if v_prediction else noise


@dataclass(frozen=True)
class NoiseOptions:
    """kohya's noise options (same names as its command-line arguments, ``reference/kohya-trainer.md`` §6).

    Attributes:
        noise_offset (`float`, *optional*): o; adds o·N(0,1) per (sample, channel). None or 0 = off
            (kohya's defaults are None; both spellings of "off" are accepted).
        noise_offset_random_strength (`bool`, defaults to `False`): draw o ~ U(0, o) each step.
        adaptive_noise_scale (`float`, *optional*): a; offset becomes o + a·|mean(latents)| per
            channel, clamped at ≥ 0. Needs ``noise_offset``.
        multires_noise_iterations (`int`, *optional*): pyramid noise levels. None or 0 = off.
        multires_noise_discount (`float`, defaults to 0.3): weight ratio between levels.
        ip_noise_gamma (`float`, *optional*): g; the model input gets ε + g·N(0,1), the target
            stays ε (input perturbation, Ning et al. 2023). None or 0 = off.
        ip_noise_gamma_random_strength (`bool`, defaults to `False`): draw g ~ U(0, g) each step.
        min_timestep (`int`, defaults to 0): lowest timestep drawn (inclusive).
        max_timestep (`int`, *optional*): highest timestep drawn (exclusive); `None` = T.
    """

    noise_offset: float | None = None
    noise_offset_random_strength: bool = False
    adaptive_noise_scale: float | None = None
    multires_noise_iterations: int | None = None
    multires_noise_discount: float = 0.3
    ip_noise_gamma: float | None = None
    ip_noise_gamma_random_strength: bool = False
    min_timestep: int = 0
    max_timestep: int | None = None

    def __post_init__(self) -> None:
        for name in ("noise_offset", "ip_noise_gamma", "multires_noise_iterations", "min_timestep"):
            if (getattr(self, name) or 0) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)!r}")
        if self.adaptive_noise_scale is not None and not self.noise_offset:
            raise ValueError(
                "adaptive_noise_scale needs noise_offset (kohya applies it on top of the offset)"
            )
        if self.max_timestep is not None and self.max_timestep <= self.min_timestep:
            raise ValueError(
                f"max_timestep ({self.max_timestep}) must be greater than min_timestep ({self.min_timestep})"
            )


@dataclass(frozen=True)
class NoisedBatch:
    """One training step's forward-diffusion sample.

    Attributes:
        noise (`torch.Tensor`): ε the loss compares against (offset and pyramid noise included,
            ip-noise-gamma perturbation not).
        noisy_latents (`torch.Tensor`): the U-Net input x_t.
        timesteps (`torch.Tensor`): int64 ``(B,)``.
    """

    noise: torch.Tensor
    noisy_latents: torch.Tensor
    timesteps: torch.Tensor


def _randn(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(shape, generator=generator, device=like.device, dtype=like.dtype)


def _rand_strength(
    value: float, random_strength: bool, like: torch.Tensor, generator
) -> float | torch.Tensor:
    """``value`` or, with random strength, value·U(0,1) as a 1-element tensor (kohya ``torch.rand(1)*value``)."""
    if not random_strength:
        return value
    return torch.rand(1, generator=generator, device=like.device, dtype=like.dtype) * value


def apply_noise_offset(
    latents: torch.Tensor,
    noise: torch.Tensor,
    noise_offset: float | torch.Tensor,
    adaptive_noise_scale: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Noise offset (crosslabs.org "Diffusion with offset noise"; kohya ``apply_noise_offset``).

    ε + o·N(0,1) of shape ``(B, C, 1, 1)``: a constant shift per sample and channel, so the model
    learns to change an image's mean brightness. With ``adaptive_noise_scale`` a, the offset is
    ``max(0, o + a·|mean_hw(latents)|)`` per sample and channel.

    Args:
        latents (`torch.Tensor`): x₀ ``(B, C, H, W)``.
        noise (`torch.Tensor`): ε, same shape.
        noise_offset (`float` or `torch.Tensor`): o.
        adaptive_noise_scale (`float`, *optional*): a.
        generator (`torch.Generator`, *optional*): source of randomness.

    Returns:
        `torch.Tensor`: the new noise.
    """
    if adaptive_noise_scale is not None:
        latent_mean = latents.mean(dim=(2, 3), keepdim=True).abs()
        noise_offset = torch.clamp(noise_offset + adaptive_noise_scale * latent_mean, min=0.0)
    return noise + noise_offset * _randn((latents.shape[0], latents.shape[1], 1, 1), latents, generator)


def pyramid_noise_like(
    noise: torch.Tensor, iterations: int = 6, discount: float = 0.4, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Multi-resolution ("pyramid") noise (Whitaker, wandb "multi-resolution noise"; kohya ``pyramid_noise_like``).

    For i = 0…iterations−1: draw r ~ U(2, 4), bilinearly upsample N(0,1) of size (H/rⁱ, W/rⁱ) to
    (H, W), weight it by discountⁱ and add it; stop once a side reaches 1. Then divide by the std.
    Level 0 adds a full-resolution N(0,1) on top of ``noise``.

    Args:
        noise (`torch.Tensor`): ε ``(B, C, H, W)`` (not modified).
        iterations (`int`, defaults to 6): number of levels.
        discount (`float`, defaults to 0.4): weight ratio between levels (kohya's option default is 0.3).
        generator (`torch.Generator`, *optional*): source of randomness (kohya uses ``random.random``).

    Returns:
        `torch.Tensor`: the new noise, scaled back to unit std.
    """
    b, c, h, w = noise.shape
    out = noise.clone()
    for i in range(iterations):
        r = float(torch.rand((), generator=generator, device=noise.device)) * 2 + 2
        hn, wn = max(1, int(h / (r**i))), max(1, int(w / (r**i)))
        level = _randn((b, c, hn, wn), noise, generator)
        out = out + F.interpolate(level, size=(h, w), mode="bilinear") * discount**i
        if hn == 1 or wn == 1:
            break
    return out / out.std()


def sample_timesteps(
    batch_size: int,
    min_timestep: int = 0,
    max_timestep: int = NUM_TRAIN_TIMESTEPS,
    *,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Uniform integer timesteps in ``[min_timestep, max_timestep)`` (kohya ``get_timesteps``).

    Args:
        batch_size (`int`): B.
        min_timestep (`int`, defaults to 0): inclusive lower bound.
        max_timestep (`int`, defaults to 1000): exclusive upper bound.
        device (`torch.device`, defaults to CPU): where the result lives.
        generator (`torch.Generator`, *optional*): must live on ``device``.

    Returns:
        `torch.Tensor`: int64 ``(B,)``.
    """
    if not 0 <= min_timestep < max_timestep:
        raise ValueError(f"need 0 <= min_timestep < max_timestep, got {min_timestep} and {max_timestep}")
    return torch.randint(min_timestep, max_timestep, (batch_size,), generator=generator, device=device)


def noise_latents(
    latents: torch.Tensor,
    schedule: NoiseSchedule,
    options: NoiseOptions = NoiseOptions(),
    generator: torch.Generator | None = None,
) -> NoisedBatch:
    """Draw ε and t and build x_t with every noise option, in kohya's order
    (``get_noise_noisy_latents_and_timesteps``): ε → offset → pyramid → t → ip noise gamma → add_noise.

    Args:
        latents (`torch.Tensor`): x₀ ``(B, C, H, W)`` (already scaled by the VAE factor).
        schedule (`NoiseSchedule`): the training schedule.
        options (`NoiseOptions`, defaults to all off): noise options.
        generator (`torch.Generator`, *optional*): one generator for every draw, on ``latents``' device.

    Returns:
        `NoisedBatch`: noise (the ε target), noisy latents and timesteps.
    """
    max_timestep = schedule.num_train_timesteps if options.max_timestep is None else options.max_timestep
    if max_timestep > schedule.num_train_timesteps:
        raise ValueError(
            f"max_timestep ({max_timestep}) exceeds the schedule's {schedule.num_train_timesteps} steps"
        )
    # 1. noise, offset, pyramid
    noise = _randn(latents.shape, latents, generator)
    if options.noise_offset:
        offset = _rand_strength(
            options.noise_offset, options.noise_offset_random_strength, latents, generator
        )
        noise = apply_noise_offset(latents, noise, offset, options.adaptive_noise_scale, generator)
    if options.multires_noise_iterations:
        noise = pyramid_noise_like(
            noise, options.multires_noise_iterations, options.multires_noise_discount, generator
        )
    # 2. timesteps
    timesteps = sample_timesteps(
        latents.shape[0], options.min_timestep, max_timestep, device=latents.device, generator=generator
    )
    # 3. model input; the ip-noise-gamma perturbation only goes into the input, never the target
    if options.ip_noise_gamma:
        gamma = _rand_strength(
            options.ip_noise_gamma, options.ip_noise_gamma_random_strength, latents, generator
        )
        noisy = schedule.add_noise(
            latents, noise + gamma * _randn(latents.shape, latents, generator), timesteps
        )
    else:
        noisy = schedule.add_noise(latents, noise, timesteps)
    return NoisedBatch(noise, noisy, timesteps)


def clamped_snr(schedule: NoiseSchedule, timesteps: torch.Tensor) -> torch.Tensor:
    """SNR′ = min(SNR, 1000), kohya ``get_snr_scale``'s clamp (see :data:`SNR_CLAMP`).

    Args:
        schedule (`NoiseSchedule`): the training schedule.
        timesteps (`torch.Tensor`): integer ``(B,)``.

    Returns:
        `torch.Tensor`: ``(B,)`` float32.
    """
    return torch.clamp(schedule.snr(timesteps), max=SNR_CLAMP)


def sigma(schedule: NoiseSchedule, timesteps: torch.Tensor) -> torch.Tensor:
    """σ_t = √((1−ᾱ_t)/ᾱ_t) of the (possibly zero-terminal-SNR) schedule; ``inf`` where ᾱ = 0.

    Args:
        schedule (`NoiseSchedule`): the training schedule.
        timesteps (`torch.Tensor`): integer ``(B,)``.

    Returns:
        `torch.Tensor`: ``(B,)`` float32 on the timesteps' device.
    """
    a = schedule.alphas_cumprod.to(timesteps.device)[timesteps]
    return ((1.0 - a) / a) ** 0.5
