"""One LECO / concept-slider training step (reference/leco-lbw.md §A1), as plain tensors in and a loss out.

Per step, for a prompt entry drawn at random:

1. a latent ``x_t``: noise, then ``k`` (1..49 of 50) DDIM steps of the *target* prompt at CFG 3
   against the unconditional prompt, with the slider active at +1 (LECO ``with network:``); in
   bidirectional mode the slider is off here, as in ai-toolkit, so neither side is favoured;
2. the training timestep ``t = timesteps_1000[int(k·1000/50)]`` (= 999 − 20k, LECO's formula);
3. frozen predictions (slider at 0, no grad) for positive, neutral, unconditional and the anchors,
   in one batched U-Net call;
4. the slider's prediction for the target at multiplier ``s`` (+1; and −1 when bidirectional) and
   MSE toward ``ε(neutral) + s·d·g·[ε(positive) − ε(unconditional)]`` (``d`` = +1 enhance, −1 erase;
   LECO ``prompt_util.PromptEmbedsPair._enhance/_erase``), plus for each anchor MSE between the
   slider's and the base prediction (the anchor loss ai-toolkit's old slider process computed);
5. backward per sign (gradients add up), so memory stays that of one adapted forward pass.

Losses are computed in fp32 whatever the autocast dtype.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .config import AnchorEntry, PromptEntry
from .embeds import PromptCache

ACTION_SIGN = {"enhance": 1.0, "erase": -1.0}


@dataclass
class StepPlan:
    """The random choices of one step (drawn from the run's generator, so a seed repeats them)."""

    entry: int
    size: tuple[int, int]  # (W, H) in pixels
    k: int
    noise: torch.Tensor  # [B, 4, H/8, W/8] on the CPU


@dataclass
class StepOutput:
    """What a step reports: total loss and its parts (floats), per sign."""

    loss: float
    slider: float
    anchor: float
    entry: int
    k: int
    timestep: int


def random_bucket(resolution: int, generator: torch.Generator) -> tuple[int, int]:
    """LECO ``get_random_resolution_in_bucket``: sides are multiples of 64 in ``[res/2, res-64]``.

    (The upper bound is exclusive in LECO's ``randint``, so ``res`` itself is never drawn.)
    """
    low, high = (resolution // 2) // 64, resolution // 64
    h = int(torch.randint(low, high, (1,), generator=generator)) * 64
    w = int(torch.randint(low, high, (1,), generator=generator)) * 64
    return w, h


def training_timestep(k: int, max_denoising_steps: int) -> int:
    """LECO: ``set_timesteps(1000)`` then ``timesteps[int(k * 1000 / max_denoising_steps)]`` = 999 − that index."""
    return 999 - int(k * 1000 / max_denoising_steps)


class SliderStep:
    """The LECO step over a U-Net view with a slider network already routed into it.

    Args:
        unet (`UNet2DConditionModel`): the training view (frozen).
        network (`Network`): the slider, applied (``network.apply()``); its multiplier is set here.
        cache (`PromptCache`): every prompt of ``entries`` and ``anchors`` encoded.
        scheduler (`DDIMScheduler`): for the partial denoising (its config is the model's schedule).
        entries (`Sequence[PromptEntry]`): the expanded prompt entries.
        anchors (`Sequence[AnchorEntry]`): prompts to preserve.
        max_denoising_steps (`int`): DDIM steps k is drawn from (LECO: 50).
        latent_cfg (`float`): CFG of the partial denoising (LECO: 3).
        bidirectional (`bool`): train +1 and −1 in one step.
        anchor_weight (`float`): overall anchor-loss weight.
        autocast (`Callable[[], ContextManager]`): the forward passes' autocast context.
    """

    def __init__(
        self,
        unet: Any,
        network: Any,
        cache: PromptCache,
        scheduler: Any,
        entries: Sequence[PromptEntry],
        anchors: Sequence[AnchorEntry],
        *,
        max_denoising_steps: int = 50,
        latent_cfg: float = 3.0,
        bidirectional: bool = False,
        anchor_weight: float = 1.0,
        autocast: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext,
    ) -> None:
        self.unet = unet
        self.network = network
        self.cache = cache
        self.scheduler = scheduler
        self.entries = list(entries)
        self.anchors = list(anchors)
        self.max_denoising_steps = max_denoising_steps
        self.latent_cfg = latent_cfg
        self.bidirectional = bidirectional
        self.anchor_weight = anchor_weight
        self.autocast = autocast
        self.device = next(unet.parameters()).device
        self.dtype = cache.dtype
        self.latent_channels = int(unet.config.in_channels)

    # -- random choices ------------------------------------------------------------------------
    def plan(self, generator: torch.Generator) -> StepPlan:
        """Draw the entry, size, k and initial noise of one step."""
        index = int(torch.randint(0, len(self.entries), (1,), generator=generator))
        entry = self.entries[index]
        size = random_bucket(entry.resolution, generator) if entry.dynamic_resolution else (entry.resolution,) * 2
        k = int(torch.randint(1, self.max_denoising_steps, (1,), generator=generator))
        w, h = size
        noise = torch.randn(entry.batch_size, self.latent_channels, h // 8, w // 8, generator=generator)
        return StepPlan(index, (w, h), k, noise)

    # -- model calls ---------------------------------------------------------------------------
    def predict(self, latents: torch.Tensor, timestep: Any, prompts: list[str], size: tuple[int, int], multiplier: float) -> torch.Tensor:
        """U-Net output for ``prompts`` (each on every latent of the batch) at slider ``multiplier``.

        Args:
            latents (`torch.Tensor`): ``[B, C, h, w]``.
            timestep (`int | torch.Tensor`): the diffusion timestep.
            prompts (`list[str]`): cached prompts; the result stacks them prompt-major: ``[len·B, ...]``.
            size (`tuple[int, int]`): pixel (W, H) for SDXL's size conditioning.
            multiplier (`float`): slider weight (0 = the base model exactly).

        Returns:
            `torch.Tensor`: predictions in the autocast dtype.
        """
        batch = latents.shape[0]
        cond = self.cache.batch(prompts, batch, size)
        # prompt-major: [p0 x B, p1 x B, ...]; repeat_interleave in the cache gives exactly that
        sample = latents.repeat(len(prompts), 1, 1, 1)
        self.network.set_multiplier(multiplier)
        with self.autocast():
            return self.unet(sample.to(self.dtype), timestep, **cond).sample

    @torch.no_grad()
    def make_latents(self, plan: StepPlan) -> torch.Tensor:
        """Step 1: ``k`` DDIM steps of the target prompt at CFG ``latent_cfg`` from the plan's noise."""
        entry = self.entries[plan.entry]
        target, _, _, unconditional = entry.resolved()
        self.scheduler.set_timesteps(self.max_denoising_steps, device=self.device)
        latents = plan.noise.to(self.device, torch.float32) * self.scheduler.init_noise_sigma
        multiplier = 0.0 if self.bidirectional else 1.0
        for t in self.scheduler.timesteps[: plan.k]:
            model_in = self.scheduler.scale_model_input(latents, t)
            uncond, cond = self.predict(model_in, t, [unconditional, target], plan.size, multiplier).float().chunk(2)
            guided = uncond + self.latent_cfg * (cond - uncond)
            latents = self.scheduler.step(guided, t, latents).prev_sample
        return latents

    # -- the loss ------------------------------------------------------------------------------
    def signs(self) -> tuple[float, ...]:
        return (1.0, -1.0) if self.bidirectional else (1.0,)

    def run(self, plan: StepPlan, backward: bool = True) -> StepOutput:
        """Steps 2-5 for one plan; with ``backward`` the gradients are accumulated on the slider.

        Returns:
            `StepOutput`: the loss (averaged over signs) and its parts.
        """
        entry = self.entries[plan.entry]
        target, positive, neutral, unconditional = entry.resolved()
        latents = self.make_latents(plan)
        timestep = training_timestep(plan.k, self.max_denoising_steps)
        t = torch.tensor([timestep], device=self.device)
        anchors = [a.prompt for a in self.anchors]
        batch = latents.shape[0]
        with torch.no_grad():
            frozen = self.predict(latents, t, [positive, neutral, unconditional, *anchors], plan.size, 0.0).float()
        eps_pos, eps_neu, eps_unc = (frozen[i * batch : (i + 1) * batch] for i in range(3))
        base_anchor = frozen[3 * batch :]
        direction = ACTION_SIGN[entry.action] * entry.guidance_scale * (eps_pos - eps_unc)
        signs = self.signs()
        total = slider_total = anchor_total = 0.0
        for sign in signs:
            pred = self.predict(latents, t, [target, *anchors], plan.size, sign).float()
            slider_loss = F.mse_loss(pred[:batch], eps_neu + sign * direction) * entry.weight
            loss = slider_loss
            anchor_loss = torch.zeros((), device=pred.device)
            if anchors:
                per = F.mse_loss(pred[batch:], base_anchor, reduction="none").flatten(1).mean(1)
                weights = torch.tensor([a.weight for a in self.anchors], device=pred.device).repeat_interleave(batch)
                anchor_loss = (per * weights).mean() * self.anchor_weight
                loss = loss + anchor_loss
            loss = loss / len(signs)
            if backward:
                loss.backward()
            total += float(loss.detach())
            slider_total += float(slider_loss.detach()) / len(signs)
            anchor_total += float(anchor_loss.detach()) / len(signs)
        self.network.set_multiplier(1.0)
        return StepOutput(total, slider_total, anchor_total, plan.entry, plan.k, timestep)


__all__ = ["ACTION_SIGN", "SliderStep", "StepOutput", "StepPlan", "random_bucket", "training_timestep"]
