"""The training loss, exactly as kohya sd-scripts computes it.

Pipeline (``train_network.py`` + ``library/custom_train_functions.py``; ``reference/kohya-trainer.md`` §6):

1. element-wise loss (l2, l1, huber, smooth_l1) on float32 prediction and target;
2. times the mask, if any (resized to the latent size with area interpolation);
3. mean over C, H, W;
4. times the per-sample weight (``prior_loss_weight`` for regularization images);
5. min-SNR → scale-v → v-pred-like → debiased weightings, in that order;
6. mean over the batch.

Every step is its own function so tests can check it against a hand computation and the loop can
log per-sample losses; :func:`compute_loss` runs them in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lora_bakery.trainer.noise import NoiseSchedule, clamped_snr, sigma

LOSS_TYPES = ("l2", "l1", "huber", "smooth_l1")
HUBER_SCHEDULES = ("constant", "exponential", "snr")


@dataclass(frozen=True)
class LossOptions:
    """kohya's loss options (same names as its command-line arguments).

    Attributes:
        loss_type (`str`, defaults to ``"l2"``): one of :data:`LOSS_TYPES`.
        huber_schedule (`str`, defaults to ``"snr"``): how c depends on t (:func:`huber_c`).
        huber_c (`float`, defaults to 0.1): the Huber threshold parameter.
        huber_scale (`float`, defaults to 1.0): multiplies c (constant and exponential schedules).
        min_snr_gamma (`float`, *optional*): γ of Min-SNR weighting (Hang et al. 2023); 5 is usual.
        scale_v_pred_loss_like_noise_pred (`bool`, defaults to `False`): v-prediction only.
        v_pred_like_loss (`float`, *optional*): λ, eps-prediction only.
        debiased_estimation_loss (`bool`, defaults to `False`): weight by 1/√SNR′ (Yu et al. 2024).
    """

    loss_type: str = "l2"
    huber_schedule: str = "snr"
    huber_c: float = 0.1
    huber_scale: float = 1.0
    min_snr_gamma: float | None = None
    scale_v_pred_loss_like_noise_pred: bool = False
    v_pred_like_loss: float | None = None
    debiased_estimation_loss: bool = False

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}; got {self.loss_type!r}")
        if self.huber_schedule not in HUBER_SCHEDULES:
            raise ValueError(
                f"huber_schedule must be one of {', '.join(HUBER_SCHEDULES)}; got {self.huber_schedule!r}"
            )
        if not self.huber_c > 0:
            raise ValueError(f"huber_c must be greater than 0, got {self.huber_c!r}")
        if self.min_snr_gamma is not None and not self.min_snr_gamma > 0:
            raise ValueError(f"min_snr_gamma must be greater than 0 (or unset), got {self.min_snr_gamma!r}")

    def check(self, *, v_prediction: bool) -> None:
        """Reject options that do not fit the model's prediction type (kohya refuses them too).

        Args:
            v_prediction (`bool`): the model predicts v.

        Raises:
            ValueError: naming the option.
        """
        if self.scale_v_pred_loss_like_noise_pred and not v_prediction:
            raise ValueError("scale_v_pred_loss_like_noise_pred only applies to v-prediction models")
        if self.v_pred_like_loss and v_prediction:
            raise ValueError("v_pred_like_loss only applies to noise-prediction (eps) models")


def huber_c(options: LossOptions, timesteps: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor | None:
    """Per-sample Huber c for the huber and smooth_l1 losses (kohya ``get_huber_threshold_if_needed``).

    - constant: c·scale
    - exponential: exp(ln(c)·t/T)·scale, from 1 at t=0 down to c at t=T
    - snr: (1−c)/(1+σ_t)² + c with σ_t = √((1−ᾱ)/ᾱ) (scale not applied): near 1 (≈ L2) at low
      noise, near c (≈ L1, robust to outliers) at high noise.

    Args:
        options (`LossOptions`): loss options.
        timesteps (`torch.Tensor`): integer ``(B,)``.
        schedule (`NoiseSchedule`): the training schedule.

    Returns:
        `torch.Tensor` or `None`: float32 ``(B,)`` on the timesteps' device; `None` for l2/l1.
    """
    if options.loss_type not in ("huber", "smooth_l1"):
        return None
    if options.huber_schedule == "exponential":
        alpha = -math.log(options.huber_c) / schedule.num_train_timesteps
        return torch.exp(-alpha * timesteps.float()) * options.huber_scale
    if options.huber_schedule == "snr":
        return (1 - options.huber_c) / (1 + sigma(schedule, timesteps)) ** 2 + options.huber_c
    return torch.full(timesteps.shape, options.huber_c * options.huber_scale, device=timesteps.device)


def elementwise_loss(
    pred: torch.Tensor, target: torch.Tensor, loss_type: str = "l2", c: torch.Tensor | None = None
) -> torch.Tensor:
    """Unreduced loss (kohya ``conditional_loss(..., reduction="none")``), computed in float32.

    - l2: (p−t)²; l1: |p−t|
    - huber: 2c(√((p−t)² + c²) − c)
    - smooth_l1: 2(√((p−t)² + c²) − c)

    Args:
        pred (`torch.Tensor`): model output ``(B, C, H, W)``.
        target (`torch.Tensor`): same shape.
        loss_type (`str`, defaults to ``"l2"``): one of :data:`LOSS_TYPES`.
        c (`torch.Tensor`, *optional*): per-sample ``(B,)`` Huber c; required for huber/smooth_l1.

    Returns:
        `torch.Tensor`: float32, same shape as ``pred``.
    """
    pred, target = pred.float(), target.float()
    if loss_type == "l2":
        return F.mse_loss(pred, target, reduction="none")
    if loss_type == "l1":
        return F.l1_loss(pred, target, reduction="none")
    if loss_type not in ("huber", "smooth_l1"):
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}; got {loss_type!r}")
    if c is None:
        raise ValueError(f"{loss_type} loss needs the per-sample c (see huber_c())")
    c = c.to(pred.device, torch.float32).reshape(-1, *([1] * (pred.ndim - 1)))
    smooth = torch.sqrt((pred - target) ** 2 + c**2) - c
    return 2 * c * smooth if loss_type == "huber" else 2 * smooth


def mask_from_conditioning_image(image: torch.Tensor) -> torch.Tensor:
    """A mask in [0, 1] from a ``(B, 3, H, W)`` image in [-1, 1]: its red channel (kohya ``apply_masked_loss``).

    Args:
        image (`torch.Tensor`): the mask image as the data loader normalises images.

    Returns:
        `torch.Tensor`: ``(B, 1, H, W)``.
    """
    return image[:, 0:1] / 2 + 0.5


def apply_masked_loss(loss: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Multiply the element-wise loss by a mask resized to the latent size (kohya ``apply_masked_loss``).

    The mask (pixel size, values in [0, 1]: 1 = learn, 0 = ignore) is area-averaged down to the
    latent grid, so a latent cell half covered by the subject gets weight 0.5. The loss is not
    renormalised by the mask's area, as in kohya: a small subject contributes a small loss.

    Args:
        loss (`torch.Tensor`): element-wise loss ``(B, C, h, w)``.
        mask (`torch.Tensor`): ``(B, H, W)`` (alpha masks) or ``(B, 1, H, W)``.

    Returns:
        `torch.Tensor`: the masked loss, same shape as ``loss``.
    """
    if mask.ndim == 3:
        mask = mask.unsqueeze(1)
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[0] != loss.shape[0]:
        raise ValueError(
            f"mask must be (B, H, W) or (B, 1, H, W) with B={loss.shape[0]}; got {tuple(mask.shape)}"
        )
    mask = F.interpolate(mask.to(loss.device, loss.dtype), size=loss.shape[2:], mode="area")
    return loss * mask


def min_snr_weight(snr: torch.Tensor, gamma: float, *, v_prediction: bool) -> torch.Tensor:
    """Min-SNR-γ weight (Hang et al. 2023; kohya ``apply_snr_weight``): min(SNR, γ)/SNR, or
    min(SNR, γ)/(SNR+1) for v-prediction.

    Args:
        snr (`torch.Tensor`): ``(B,)`` unclamped SNR.
        gamma (`float`): γ.
        v_prediction (`bool`): the model predicts v.

    Returns:
        `torch.Tensor`: ``(B,)``.
    """
    clipped = torch.minimum(snr, torch.full_like(snr, gamma))
    return clipped / (snr + 1) if v_prediction else clipped / snr


def scale_v_like_noise_weight(snr_clamped: torch.Tensor) -> torch.Tensor:
    """SNR′/(SNR′+1) (kohya ``scale_v_prediction_loss_like_noise_prediction``): makes a v loss
    weigh timesteps as an ε loss would.

    Args:
        snr_clamped (`torch.Tensor`): SNR′ ``(B,)``.

    Returns:
        `torch.Tensor`: ``(B,)``.
    """
    return snr_clamped / (snr_clamped + 1)


def v_pred_like_weight(snr_clamped: torch.Tensor, strength: float) -> torch.Tensor:
    """1 + λ·(SNR′+1)/SNR′ (kohya ``add_v_prediction_like_loss``: loss + λ·loss/scale).

    Args:
        snr_clamped (`torch.Tensor`): SNR′ ``(B,)``.
        strength (`float`): λ.

    Returns:
        `torch.Tensor`: ``(B,)``.
    """
    return 1 + strength * (snr_clamped + 1) / snr_clamped


def debiased_weight(snr_clamped: torch.Tensor, *, v_prediction: bool) -> torch.Tensor:
    """Debiased estimation (Yu et al. 2024; kohya ``apply_debiased_estimation``): 1/√SNR′, or
    1/(SNR′+1) for v-prediction.

    Args:
        snr_clamped (`torch.Tensor`): SNR′ ``(B,)``.
        v_prediction (`bool`): the model predicts v.

    Returns:
        `torch.Tensor`: ``(B,)``.
    """
    return 1 / (snr_clamped + 1) if v_prediction else 1 / torch.sqrt(snr_clamped)


def timestep_weighting(
    loss: torch.Tensor,
    timesteps: torch.Tensor,
    schedule: NoiseSchedule,
    options: LossOptions,
    *,
    v_prediction: bool,
) -> torch.Tensor:
    """Apply min-SNR → scale-v → v-pred-like → debiased, in kohya's order (``post_process_loss``).

    Args:
        loss (`torch.Tensor`): per-sample loss ``(B,)``.
        timesteps (`torch.Tensor`): integer ``(B,)``.
        schedule (`NoiseSchedule`): the training schedule (its ``all_snr``).
        options (`LossOptions`): which weightings are on.
        v_prediction (`bool`): the model predicts v.

    Returns:
        `torch.Tensor`: ``(B,)``.
    """
    timesteps = timesteps.to(loss.device)
    if options.min_snr_gamma:
        loss = loss * min_snr_weight(
            schedule.snr(timesteps), options.min_snr_gamma, v_prediction=v_prediction
        )
    if options.scale_v_pred_loss_like_noise_pred:
        loss = loss * scale_v_like_noise_weight(clamped_snr(schedule, timesteps))
    if options.v_pred_like_loss:
        loss = loss * v_pred_like_weight(clamped_snr(schedule, timesteps), options.v_pred_like_loss)
    if options.debiased_estimation_loss:
        loss = loss * debiased_weight(clamped_snr(schedule, timesteps), v_prediction=v_prediction)
    return loss


def per_sample_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    schedule: NoiseSchedule,
    options: LossOptions = LossOptions(),
    *,
    v_prediction: bool = False,
    mask: torch.Tensor | None = None,
    loss_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Steps 1–5 of the pipeline: the weighted loss of each sample.

    Args:
        pred (`torch.Tensor`): U-Net output ``(B, C, h, w)``.
        target (`torch.Tensor`): ε or v (:meth:`NoiseSchedule.target`).
        timesteps (`torch.Tensor`): integer ``(B,)``.
        schedule (`NoiseSchedule`): the training schedule.
        options (`LossOptions`, defaults to plain L2): loss options.
        v_prediction (`bool`, defaults to `False`): the model predicts v.
        mask (`torch.Tensor`, *optional*): ``(B, H, W)`` or ``(B, 1, H, W)`` in [0, 1].
        loss_weights (`torch.Tensor`, *optional*): ``(B,)``; ``prior_loss_weight`` for reg
            images, 1 for the others.

    Returns:
        `torch.Tensor`: float32 ``(B,)``.
    """
    options.check(v_prediction=v_prediction)
    # 1. element-wise
    loss = elementwise_loss(pred, target, options.loss_type, huber_c(options, timesteps, schedule))
    # 2. mask
    if mask is not None:
        loss = apply_masked_loss(loss, mask)
    # 3. mean over C, H, W
    loss = loss.mean(dim=tuple(range(1, loss.ndim)))
    # 4. per-sample weights (reg images)
    if loss_weights is not None:
        loss = loss * loss_weights.to(loss.device, loss.dtype)
    # 5. timestep weightings
    return timestep_weighting(loss, timesteps, schedule, options, v_prediction=v_prediction)


def compute_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    timesteps: torch.Tensor,
    schedule: NoiseSchedule,
    options: LossOptions = LossOptions(),
    *,
    v_prediction: bool = False,
    mask: torch.Tensor | None = None,
    loss_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The scalar training loss: :func:`per_sample_loss` averaged over the batch (step 6).

    Args: see :func:`per_sample_loss`.

    Returns:
        `torch.Tensor`: float32 scalar.
    """
    return per_sample_loss(
        pred,
        target,
        timesteps,
        schedule,
        options,
        v_prediction=v_prediction,
        mask=mask,
        loss_weights=loss_weights,
    ).mean()


def prior_loss_weights(is_reg: torch.Tensor | list[bool], prior_loss_weight: float = 1.0) -> torch.Tensor:
    """Per-sample weights: ``prior_loss_weight`` for regularization images, 1 for training images
    (kohya sets ``loss_weights`` in the dataset from each subset's ``is_reg``).

    Args:
        is_reg (`torch.Tensor` or `list[bool]`): ``(B,)`` flags.
        prior_loss_weight (`float`, defaults to 1.0): weight of reg images.

    Returns:
        `torch.Tensor`: float32 ``(B,)``.
    """
    flags = torch.as_tensor(is_reg, dtype=torch.bool)
    return torch.where(flags, torch.tensor(float(prior_loss_weight)), torch.tensor(1.0))
