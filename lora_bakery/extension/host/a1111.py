"""``A1111Host``: the Host protocol over a running AUTOMATIC1111 webui (1.10).

The ``a1111*`` modules and ``forge_detect`` are the only places that import ``modules.*``; every import
happens inside a function so the package imports without a webui. Facts relied on are in
reference/a1111-host.md (§3 progress and the queue lock, §4 the loaded model, §5 generation,
§6 the built-in Lora extension, §9 TI training) and reference/a1111-live-sd15.md (live names).

Locking. ``call_queue.queue_lock`` is a ``FIFOLock`` that is *not* reentrant and does not know
its owner. UI handlers wrapped by ``wrap_gradio_gpu_call`` already hold it when they run; API
routes and worker threads do not. We therefore count, per thread, how deep we are inside the
lock: ``gpu_call`` (our wrapper around ``wrap_gradio_gpu_call``) and ``holding_queue_lock`` mark
the thread as holder, and ``queue_lock``/``exclusive``/``generate`` only acquire the lock when the
thread is not marked. A handler must therefore be wrapped with ``A1111Host.gpu_call``, never with
``call_queue.wrap_gradio_gpu_call`` directly, or ``exclusive()`` would wait for itself.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .a1111_lora import (
    clear_networks,
    forget_networks,
    lora_tag,
    preload_block_weighted,
    register_lora,
    unregister_loras,
)
from .a1111_progress import A1111Progress
from .base import GeneratedImage, GenerationRequest, HostError, ModelParts, Progress

_local = threading.local()
logger = logging.getLogger("lora_bakery.host.a1111")

NO_MODEL = "No checkpoint is loaded in the webui. Pick one in the checkpoint dropdown at the top of the page."


def _depth() -> int:
    return getattr(_local, "depth", 0)


def _set_depth(value: int) -> None:
    _local.depth = value


def _is_hf_tokenizer(tok: Any) -> bool:
    return tok is not None and hasattr(tok, "convert_tokens_to_ids") and hasattr(tok, "model_max_length")


def _bang_padded(first: Any) -> Any:
    """A CLIP-L tokenizer that pads with ``!`` like OpenCLIP (SD2, SDXL's second encoder).

    # Copied from lora_bakery.extension.host.tokenizers._second_from_first
    """
    import copy

    second = copy.deepcopy(first)
    second.pad_token = "!"
    return second


class A1111Host:
    """The Host protocol inside AUTOMATIC1111 webui 1.10.

    Cheap to create (touches nothing until a method is called), so a factory may make one per
    request. Not for Forge: see ``forge_detect``.
    """

    name = "a1111"

    def __init__(self) -> None:
        self._progress = A1111Progress()

    # -- progress ------------------------------------------------------------------------------
    @property
    def progress(self) -> Progress:
        return self._progress

    # -- the queue lock ------------------------------------------------------------------------
    @contextlib.contextmanager
    def holding_queue_lock(self) -> Iterator[None]:
        """Declare that this thread already holds ``queue_lock`` (inside ``wrap_gradio_gpu_call``)."""
        _set_depth(_depth() + 1)
        try:
            yield
        finally:
            _set_depth(_depth() - 1)

    @contextlib.contextmanager
    def queue_lock(self) -> Iterator[None]:
        """Hold the webui's queue lock: taken here unless this thread already holds it.

        When we take it ourselves (API route, worker thread) we also own ``shared.state`` for the
        duration, so we ``begin``/``end`` it and reset its flags as ``wrap_gradio_call`` does.
        """
        if _depth() > 0:
            with self.holding_queue_lock():
                yield
            return
        from modules import call_queue, shared

        lock = call_queue.queue_lock
        if not lock.acquire(blocking=False):
            logger.info("LoRA Bakery: waiting for the webui's queue (another generation or job is running)")
            lock.acquire()
        _set_depth(1)
        try:
            shared.state.begin(job="LoRA Bakery")
            try:
                yield
            finally:
                state = shared.state
                state.end()
                state.skipped = state.interrupted = False
                state.stopping_generation = False
                state.job_count = 0
        finally:
            _set_depth(0)
            lock.release()

    def gpu_call(self, fn: Callable[..., Any], extra_outputs: list | None = None) -> Callable[..., Any]:
        """``call_queue.wrap_gradio_gpu_call(fn)`` that tells ``exclusive()`` the lock is held.

        Use this for every LoRA Bakery button that runs a long job in A1111 (with the
        ``task(...)`` id from ``javascript/lora_bakery.js`` as the first input).

        Args:
            fn (`Callable`): the gradio handler; it must return one value per output.
            extra_outputs (`list`, *optional*): values for all outputs but the last when ``fn``
                raises (the last output gets the error HTML), as in A1111.

        Returns:
            `Callable`: the wrapped handler.
        """
        from modules import call_queue

        @functools.wraps(fn)
        def marked(*args: Any, **kwargs: Any) -> Any:
            with self.holding_queue_lock():
                return fn(*args, **kwargs)

        return call_queue.wrap_gradio_gpu_call(marked, extra_outputs=extra_outputs)

    # -- the model -----------------------------------------------------------------------------
    @staticmethod
    def _sd_model() -> Any:
        from modules import shared

        sd_model = shared.sd_model
        if sd_model is None:
            raise HostError(NO_MODEL)
        return sd_model

    def model(self) -> ModelParts:
        """The loaded checkpoint as ModelParts: the live Parameters under checkpoint keys.

        Under ``--medvram``/``--lowvram`` the parts carry an ``A1111Placement``: the trainer moves
        its views to the GPU and gives the webui its own placement back afterwards.

        Raises:
            `HostError`: no model loaded, or an unsupported family (SD3).
        """
        from modules import shared

        from lora_bakery.trainer.models.keys import checkpoint_key_from_live_name

        sd_model = self._sd_model()
        if getattr(sd_model, "is_sd3", False):
            raise HostError("The loaded checkpoint is SD3; LoRA Bakery supports SD1.x, SD2.x and SDXL.")
        arch = "sdxl" if getattr(sd_model, "is_sdxl", False) else "sd2" if getattr(sd_model, "is_sd2", False) else "sd1"
        params: dict[str, Any] = {}
        for name, param in sd_model.named_parameters():
            key = checkpoint_key_from_live_name(name)
            if arch == "sdxl" and key.startswith("cond_stage_model."):  # the conditioner, by its other name
                key = "conditioner." + key[len("cond_stage_model.") :]
            params.setdefault(key, param)
        info = getattr(sd_model, "sd_checkpoint_info", None)
        name = str(getattr(info, "name", "") or "")
        path = getattr(info, "filename", None) or getattr(sd_model, "sd_model_checkpoint", None)
        return ModelParts(
            architecture=arch,  # type: ignore[arg-type]
            prediction="v" if getattr(sd_model, "parameterization", "eps") == "v" else "eps",
            parameters=params,
            tokenizers=self._tokenizers(sd_model, arch, path),
            checkpoint_name=name or (Path(path).name if path else ""),
            checkpoint_path=str(path) if path else None,
            checkpoint_hash=getattr(info, "sha256", None) or _cached_sha256(path, name),
            legacy_hash=getattr(info, "hash", None),
            clip_skip=int(getattr(shared.opts, "CLIP_stop_at_last_layers", 1) or 1),
            placement=_placement(sd_model),
        )

    @staticmethod
    def _tokenizers(sd_model: Any, arch: str, path: str | None) -> list[Any]:
        """The host's own CLIP tokenizers; OpenCLIP encoders get CLIP-L's BPE padded with ``!``."""
        if arch == "sdxl":
            embedders = sd_model.conditioner.embedders
            first = getattr(getattr(embedders[0], "wrapped", embedders[0]), "tokenizer", None)
            second = getattr(getattr(embedders[1], "wrapped", embedders[1]), "tokenizer", None)
            if not _is_hf_tokenizer(first):
                raise HostError("Could not find the CLIP tokenizer of the loaded SDXL model.")
            return [first, second if _is_hf_tokenizer(second) else _bang_padded(first)]
        wrapped = getattr(sd_model.cond_stage_model, "wrapped", sd_model.cond_stage_model)
        tok = getattr(wrapped, "tokenizer", None)
        if arch == "sd1":
            if not _is_hf_tokenizer(tok):
                raise HostError("Could not find the CLIP tokenizer of the loaded SD1 model.")
            return [tok]
        # SD2 runs OpenCLIP with its own tokenizer; use the same BPE from the local HF cache.
        from .tokenizers import find_tokenizers

        return [_bang_padded(find_tokenizers(path or "model.safetensors", 1)[0])]

    # -- exclusive use -------------------------------------------------------------------------
    @contextlib.contextmanager
    def exclusive(self, *, undo_optimizations: bool = False) -> Iterator[None]:
        """Own the model: queue lock, no LoRAs merged in, requires_grad flags put back after.

        The live UNet has ``requires_grad=True`` on every parameter (reference a1111-live-sd15),
        and the Lora extension merges LoRAs into the weights in place (reference §6), so both are
        recorded/cleared on entry and restored/cleared on exit, also when the body raises.

        Args:
            undo_optimizations (`bool`, defaults to `False`): also undo the cross-attention
                optimisation hijack for the duration, as TI training does (reference §9). Only
                needed for code that trains through ldm/sgm modules; our trainer runs its own
                diffusers modules over the same Parameters, which the hijack does not touch.
        """
        with self.queue_lock():
            from modules import shared

            sd_model = shared.sd_model
            flags = [(p, p.requires_grad) for p in sd_model.parameters()] if sd_model is not None else []
            if sd_model is not None:
                self.clear_networks(sd_model)
            hijack = None
            if undo_optimizations:
                from modules import sd_hijack as hijack

                hijack.undo_optimizations()
            try:
                yield
            finally:
                try:
                    if sd_model is not None:
                        self.clear_networks(sd_model)
                finally:
                    for param, flag in flags:
                        param.requires_grad_(flag)
                    if hijack is not None:
                        hijack.apply_optimizations()

    def clear_networks(self, sd_model: Any = None) -> int:
        """Unload the Lora extension's networks and put the original weights back now.

        Returns:
            `int`: how many layers had LoRA weights merged in.
        """
        return clear_networks(sd_model if sd_model is not None else self._sd_model())

    # -- generation ----------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest], progress: Progress | None = None) -> list[GeneratedImage]:
        """txt2img through ``processing.process_images``, LoRAs through the built-in Lora extension.

        Each request's LoRAs are added to its prompt as ``<lora:name:te[:unet]>`` and removed
        from the model afterwards, so the next request (or a bake) sees the clean weights. Per-block
        weights (lbw) scale a private copy of the network in the extension's memory cache, which
        is dropped after the generation.

        Args:
            requests (`Sequence[GenerationRequest]`): the images to make.
            progress (`Progress`, *optional*): defaults to ``shared.state`` (``self.progress``);
                one step per request; interrupting stops between requests (and the webui's own
                sampler stops mid-image).

        Returns:
            `list[GeneratedImage]`: ``batch_size`` images per finished request, with the seed
            actually used and the webui's infotext.

        Raises:
            `HostError`: a missing LoRA file, the Lora extension disabled, bad block weights
            (wrong length, OFT), or no model loaded.
        """
        progress = progress or self._progress
        out: list[GeneratedImage] = []
        with self.queue_lock():
            from modules import processing, shared

            sd_model = self._sd_model()
            registered: dict[str, Any] = {}
            progress.begin(len(requests), "Generating")
            try:
                for index, req in enumerate(requests):
                    if progress.interrupted or shared.state.interrupted:
                        break
                    tags = []
                    for spec in req.loras:
                        name, entry = register_lora(spec)
                        registered[name] = entry
                        if spec.block_weights is not None:
                            preload_block_weighted(name, entry, spec.block_weights)
                        tags.append(lora_tag(name, spec))
                    prompt = " ".join([req.prompt, *tags]) if tags else req.prompt
                    p = processing.StableDiffusionProcessingTxt2Img(
                        sd_model=sd_model, prompt=prompt, negative_prompt=req.negative_prompt, seed=req.seed,
                        sampler_name=req.sampler, steps=req.steps, cfg_scale=req.cfg_scale, width=req.width,
                        height=req.height, batch_size=req.batch_size, n_iter=1,
                        do_not_save_samples=True, do_not_save_grid=True,
                    )
                    # The conditioning cache is keyed on prompt and LoRA name, not file contents
                    # (reference §5): a re-baked epoch under the same name must not reuse it.
                    p.cached_c = [None, None]
                    p.cached_uc = [None, None]
                    job_no = shared.state.job_no  # process_images advances it (TI precedent, §3)
                    try:
                        processed = processing.process_images(p)
                    finally:
                        p.close()
                        shared.state.job_no = job_no
                        shared.state.sampling_step = 0
                    images = _to_generated(processed, req)
                    out.extend(images)
                    progress.step(1, f"Generated {index + 1}/{len(requests)}")
                    if images:
                        progress.preview(images[-1].image)
            finally:
                try:
                    if registered:
                        self.clear_networks(sd_model)
                finally:
                    forget_networks(registered)
                    unregister_loras(registered)
                    progress.end()
        return out


def _to_generated(processed: Any, req: GenerationRequest) -> list[GeneratedImage]:
    """Map a webui ``Processed`` to GeneratedImage rows (skipping a grid, extra script images)."""
    start = int(getattr(processed, "index_of_first_image", 0) or 0)
    images = list(processed.images)[start : start + req.batch_size]
    seeds = list(getattr(processed, "all_seeds", []) or [])
    infotexts = list(getattr(processed, "infotexts", []) or [])
    negatives = list(getattr(processed, "all_negative_prompts", []) or [])
    sampler = getattr(processed, "sampler_name", None) or req.sampler or ""
    out = []
    for i, image in enumerate(images):
        seed = seeds[i] if i < len(seeds) else int(getattr(processed, "seed", req.seed)) + i
        out.append(GeneratedImage(
            image=image, seed=int(seed), prompt=req.prompt,
            negative_prompt=negatives[i] if i < len(negatives) else req.negative_prompt,
            width=int(getattr(image, "width", req.width)), height=int(getattr(image, "height", req.height)),
            steps=req.steps, cfg_scale=req.cfg_scale, sampler=str(sampler),
            infotext=infotexts[start + i] if start + i < len(infotexts) else str(getattr(processed, "info", "")),
        ))
    return out


def _placement(sd_model: Any) -> Any:
    """An ``A1111Placement`` when ``modules/lowvram.py`` manages the model (--medvram/--lowvram), else None."""
    if not getattr(sd_model, "lowvram", False):
        return None
    from .a1111_placement import A1111Placement

    return A1111Placement(sd_model)


def _cached_sha256(path: str | None, name: str) -> str | None:
    """The checkpoint's sha256 if the webui already computed it (never hashes gigabytes here)."""
    if not path:
        return None
    try:
        from modules import hashes

        return hashes.sha256_from_cache(path, f"checkpoint/{name}")
    except Exception:  # noqa: BLE001 - a hash is nice to have, never worth failing model()
        return None


__all__ = ["A1111Host", "A1111Progress"]
