"""One epoch of the loop: batches → captions, latents, noise → prediction → loss → optimizer steps.

Interrupt requests and the step budget are checked only between optimizer steps, so a saved state
never holds half an accumulated gradient and resuming continues exactly where the run stopped.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

import torch

from ..data import augment
from ..data.captions import process_caption
from ..losses import compute_loss
from ..noise import noise_latents
from .text import sdxl_time_ids
from .types import StepInfo, TrainError


def epoch_mean(run: Any) -> float:
    """Mean loss of the current epoch's optimizer steps."""
    start = (run.position.epoch - 1) * run.schedule.steps_per_epoch
    values = run.result.losses[start:]
    return sum(values) / len(values) if values else float("nan")


def _batch_inputs(run: Any, batch: Any, epoch: int, batch_index: int) -> tuple[list[Any], list[str], torch.Tensor, torch.Tensor | None]:
    """Items, processed captions, scaled latents and (masked loss) masks of one batch."""
    plan, p = run.plan, run.position
    items = [plan.items[i] for i in batch.items]
    live = run.cache.live  # random_crop / color_aug: encoded every step
    captions, flips, augs, seeds = [], [], [], []
    for pos, (index, item) in enumerate(zip(batch.items, items)):
        rng = run.batcher.sample_rng(epoch, batch_index, pos)
        captions.append(process_caption(item.caption, plan.caption_options(item), rng, epoch=epoch,
                                        step=p.step, max_train_steps=run.schedule.total_steps))
        flips.append(bool(item.flip_aug) and rng.random() < 0.5)
        augs.append(run.cache.augment(index, rng) if live else augment.NONE)
        seeds.append(rng.getrandbits(63) if live else 0)
    if live:
        latents = run.cache.encode(batch.items, flips, augs, seeds)
    else:
        latents = torch.stack([run.cache.get(i, f) for i, f in zip(batch.items, flips)])
    latents = latents.to(run.device, torch.float32) * run.scaling
    mask = None
    # kohya multiplies the loss by a mask under --masked_loss, and by the alpha mask whenever a subset
    # has alpha_mask (train_network.py: ``args.masked_loss or batch["alpha_masks"] is not None``)
    if run.config.training.masked_loss or any(item.alpha_mask for item in items):
        masks = [run.cache.mask(i, f, a) for i, f, a in zip(batch.items, flips, augs)]
        if any(m is not None for m in masks):
            w, h = batch.bucket
            mask = torch.stack([m if m is not None else torch.ones(h, w) for m in masks]).to(run.device)
    return items, captions, latents, mask


def micro_step(run: Any, batch: Any, epoch: int, batch_index: int, divide: int) -> float:
    """Forward and backward of one batch; returns its (undivided) loss.

    1. captions (kohya order), flips and augmentations from the batch's own random source; cached
       latents (or, with random_crop / color_aug, latents encoded now)
    2. noise, timesteps and noisy latents (offset, pyramid, ip-noise-gamma as configured)
    3. text conditioning (with gradients only when text-encoder adapters train)
    4. U-Net prediction under autocast
    5. loss (mask, prior weight, min-SNR...) and backward, scaled for accumulation
    """
    # 1. inputs
    items, captions, latents, mask = _batch_inputs(run, batch, epoch, batch_index)
    weights = torch.tensor([item.loss_weight for item in items], dtype=torch.float32, device=run.device)
    # 2. noise
    noised = noise_latents(latents, run.noise_schedule, run.noise_opts, run.generator)
    # 3. text
    grad = contextlib.nullcontext() if run.train_te else torch.no_grad()
    with grad, run.precision.autocast():
        context, pooled = run.text.encode(captions, run.device)
    # 4. prediction
    with run.precision.autocast():
        added = None
        if pooled is not None:
            added = {"text_embeds": pooled, "time_ids": sdxl_time_ids(items, run.device, context.dtype)}
        pred = run.graphs(noised.noisy_latents, noised.timesteps, context, added) if run.graphs else None
        if pred is None:
            pred = run.views.unet(noised.noisy_latents, noised.timesteps, context, added_cond_kwargs=added).sample
    # 5. loss
    target = run.noise_schedule.target(latents, noised.noise, noised.timesteps, v_prediction=run.v_pred)
    loss = compute_loss(pred, target, noised.timesteps, run.noise_schedule, run.loss_opts,
                        v_prediction=run.v_pred, mask=mask, loss_weights=weights)
    scaled = loss / divide
    if run.scaler is not None:
        run.scaler.scale(scaled).backward()
    else:
        scaled.backward()
    return float(loss.detach().item())


def optimizer_step(run: Any) -> None:
    """Average gradients over processes, clip, step the optimizer and the schedule, cap norms."""
    run.dist.average_gradients(run.params)
    opt = run.config.optimizer
    if run.scaler is not None:
        run.scaler.unscale_(run.optimizer)
    if opt.max_grad_norm:
        torch.nn.utils.clip_grad_norm_(run.params, opt.max_grad_norm)
    if run.scaler is not None:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    if run.config.network.scale_weight_norms:
        run.network.apply_max_norm(run.config.network.scale_weight_norms)


def _nan_error(run: Any, value: float) -> TrainError:
    p = run.position
    keep = f"The last good file is {run.last_good.name}." if run.last_good else "No epoch had finished, so no file was kept."
    return TrainError(
        f"The loss became {value} at optimizer step {p.step + 1} (epoch {p.epoch}); training stopped. {keep} "
        "Lower the learning rate, train in bf16 instead of fp16 (fp16 overflows on some GPUs), use an "
        "fp16-fix VAE, or check the images for broken files.",
        reason="nan",
        result=run.result,
    )


def average_loss(losses: list[float], steps_per_epoch: int) -> float:
    """kohya's ``avr_loss``: the mean of the last epoch's worth of step losses (all of them in epoch 1).

    kohya's ``LossRecorder`` keeps one slot per step of an epoch and overwrites it the next epoch, so
    its mean always covers the latest ``steps_per_epoch`` losses; here counted in optimizer steps.
    """
    window = losses[-max(1, steps_per_epoch):]
    return sum(window) / len(window) if window else float("nan")


def _progress_text(run: Any, loss: float, avr: float) -> str:
    p, sched = run.position, run.schedule
    done = p.step - run.start_step
    elapsed = time.perf_counter() - run.started
    eta = elapsed / done * (sched.total_steps - p.step) if done else 0.0
    return (f"epoch {p.epoch}/{sched.epochs} · step {p.step}/{sched.total_steps} · "
            f"{p.images_seen} images · loss {loss:.4f} · avr_loss {avr:.4f} · ETA {int(eta) // 60}:{int(eta) % 60:02d}")


def run_epoch(run: Any) -> str:
    """Train the rest of the current epoch.

    Returns:
        `str`: ``"epoch"`` (finished), ``"interrupted"`` or ``"max_steps"`` (budget reached mid-epoch).

    Raises:
        TrainError: the loss became NaN/inf.
    """
    p = run.position
    batches = run.dist.shard(run.batcher.epoch(p.epoch))
    accum = max(1, run.config.training.grad_accum)
    if p.batch == 0 and run.dist.any(bool(run.progress.interrupted), run.device):
        return "interrupted"
    for first in range(p.batch, len(batches), accum):
        group = range(first, min(first + accum, len(batches)))
        total = 0.0
        for index in group:
            total += micro_step(run, batches[index], p.epoch, index, len(group))
        loss = run.dist.mean(total / len(group), run.device)
        if not math.isfinite(loss):
            run.optimizer.zero_grad(set_to_none=True)
            raise _nan_error(run, loss)
        optimizer_step(run)
        p.batch = group.stop
        p.step += 1
        p.images_seen += sum(len(batches[i].items) for i in group) * run.dist.world
        run.result.losses.append(loss)
        run.result.steps, run.result.images_seen = p.step, p.images_seen
        lr = float(run.optimizer.param_groups[0]["lr"])
        avr = average_loss(run.result.losses, run.schedule.steps_per_epoch)
        run.scalars.add("loss/step", loss, p.step)
        run.scalars.add("loss/average", avr, p.step)
        run.scalars.add("lr/first_group", lr, p.step)
        run.progress.step(1, _progress_text(run, loss, avr))
        run.callbacks.on_step_end(StepInfo(p.epoch, p.step, p.images_seen, loss, lr, run.network))
        if p.step >= run.schedule.total_steps and p.batch < len(batches):
            return "max_steps"
        if run.dist.any(bool(run.progress.interrupted), run.device):
            return "interrupted"
    return "epoch"
