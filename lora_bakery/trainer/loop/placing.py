"""The run's side of model placement: medvram/lowvram hosts, fp8_base and cached text-encoder outputs.

With a host placement (``parts.placement``, A1111 ``--medvram`` / ``--lowvram``) a bake runs as:

1. the host's own modules leave the device (A1111's ``send_everything_to_cpu``);
2. the VAE comes to the device, latents are cached, the VAE leaves (it stays when ``random_crop`` /
   ``color_aug`` encode every step);
3. captions are encoded once with the text encoders on the device, which then leave; when the
   captions change from step to step or the text encoder trains, the text encoders stay instead
   (and the log says why);
4. the U-Net comes to the device (in fp8 with ``training.fp8_base``) and training runs;
5. afterwards everything is given back (:meth:`ViewPlacement.restore`), also on errors.

Without a host placement nothing moves, unless ``training.fp8_base`` asks for the U-Net in fp8.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import torch

from ..placement import ViewPlacement
from .types import TrainError


def view_placement(run: Any) -> ViewPlacement | None:
    """The run's :class:`ViewPlacement`, or ``None`` when the views stay on the host's tensors."""
    from ..fp8 import fp8_keys

    host = getattr(run.parts, "placement", None)
    fp8 = bool(run.config.training.fp8_base)
    if host is None and not fp8:
        return None
    device = host.device if host is not None else next(run.views.unet.parameters()).device
    keys = fp8_keys(run.views) if fp8 else frozenset()
    return ViewPlacement(run.views, run.parts.parameters, device, host, keys)


def moves_host_parts(run: Any) -> bool:
    """True when the VAE and text encoders must be brought to the device (a host placement)."""
    return run.placement is not None and run.placement.host is not None


def check_fp8(run: Any) -> None:
    """Refuse fp8_base where it cannot work (old torch, no autocast, an unsupported device)."""
    from ..fp8 import fp8_bytes_saved, fp8_problem

    if not run.config.training.fp8_base:
        return
    problem = fp8_problem(run.device, run.precision.autocast_dtype)
    if problem:
        raise TrainError(problem, reason="config")
    saved = fp8_bytes_saved(run.placement.fp8_keys, run.parts.parameters)
    run.note(f"fp8_base: {len(run.placement.fp8_keys)} U-Net Linear/Conv weights in float8_e4m3fn on the "
             f"{run.device.type} for this bake ({saved / 2**30:.2f} GiB less than the host's dtype); the host's "
             "model is not changed.")


def begin(run: Any) -> None:
    """Free the device of the host's modules (host placement only) and say what will happen."""
    if not moves_host_parts(run):
        return
    run.placement.begin()
    run.note(f"{run.placement.host.description}: the webui keeps the model off the GPU between uses; this bake "
             "caches latents (VAE on the GPU, then off), then text-encoder outputs when the captions allow, and "
             "trains with the U-Net on the GPU. The webui's own placement is restored afterwards.")


@contextlib.contextmanager
def vae_placed(run: Any) -> Iterator[None]:
    """The VAE on the device while latents are cached (host placement only); it leaves afterwards
    unless latents are encoded every step (``random_crop`` / ``color_aug``)."""
    if not moves_host_parts(run):
        yield
        return
    run.placement.to_device("vae")
    live = False
    try:
        yield
        live = bool(getattr(run.cache, "live", False))
    finally:
        if live:
            run.note("VAE kept on the GPU for the whole bake: random_crop / color_aug encode latents every step")
        else:
            run.placement.offload("vae")


def text_cache_conflicts(run: Any) -> list[str]:
    """Why captions cannot be encoded once: trained text encoder, or options that vary captions."""
    from .text import varying_caption_options

    reasons = ["the text encoder is trained (network.train_text_encoder)"] if run.train_te else []
    return reasons + varying_caption_options(run.plan)


def prepare_text(run: Any) -> None:
    """Cache text-encoder outputs when asked (or automatically under a host placement) and place the
    text encoders: off the device when cached, on it otherwise (host placement only)."""
    asked = bool(run.config.training.cache_text_encoder_outputs)
    auto = moves_host_parts(run)
    if not (asked or auto):
        return
    conflicts = text_cache_conflicts(run)
    if conflicts:
        if asked:
            raise TrainError(
                "training.cache_text_encoder_outputs needs captions that are the same every step and a text encoder "
                f"that is not trained; this config has: {'; '.join(conflicts)}. Turn those off, or turn "
                "training.cache_text_encoder_outputs off.", reason="config")
        run.placement.to_device("text_encoders")
        run.note(f"text encoder kept on the GPU for the whole bake (its outputs cannot be cached: {'; '.join(conflicts)})")
        return
    _cache_text(run)


def _cache_text(run: Any) -> None:
    from ..data.captions import process_caption
    from .text import CachedConditioning

    plan = run.plan
    captions = [process_caption(item.caption, plan.caption_options(item), random.Random(0), epoch=1, step=0,
                                max_train_steps=run.schedule.total_steps) for item in plan.items]
    if moves_host_parts(run):
        run.placement.to_device("text_encoders")
    try:
        run.progress.begin(len(set(captions)), "Caching text-encoder outputs")
        run.text = CachedConditioning.build(run.text, captions, run.device, run.precision.autocast,
                                            lambda n: run.progress.step(n))
    finally:
        run.progress.end()
        if moves_host_parts(run):
            run.placement.offload("text_encoders")
    run.note(f"text-encoder outputs cached for {len(run.text)} distinct captions "
             f"({run.text.nbytes / 2**20:.1f} MiB in RAM); the text encoder is not used while training")


def bring_unet(run: Any) -> None:
    """The U-Net on the device (in fp8 where configured), and the adapters with it."""
    if run.placement is None:
        return
    run.placement.to_device("unet")
    run.network.to(run.device)  # keeps the Parameter objects: the optimizer's references stay valid
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = ["begin", "bring_unet", "check_fp8", "moves_host_parts", "prepare_text",
           "text_cache_conflicts", "vae_placed",
           "view_placement"]
