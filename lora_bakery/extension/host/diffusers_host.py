"""``DiffusersHost``: the Host for standalone use (``bakery app``, ``bakery`` CLI, tests).

It plays the webui's part: it loads a single-file SD1.5/SDXL checkpoint (original LDM/SGM keys,
the same files users load in A1111) with safetensors, keeps those tensors as "the host's
weights", and generates with diffusers pipelines assembled from the zero-copy training views, so
the standalone path holds exactly one copy of the model, like the webui path.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .base import GeneratedImage, GenerationRequest, HostError, ModelParts, NullProgress, Progress
from .tokenizers import find_tokenizers


def _load_state_dict(path: Path, device: str) -> dict[str, Any]:
    """Read every tensor of a ``.safetensors`` file. Other formats are refused (never unpickle)."""
    if path.suffix.lower() != ".safetensors":
        raise HostError(f"{path.name}: only .safetensors checkpoints are loaded (pickled .ckpt files can run code).")
    if not path.is_file():
        raise HostError(f"Checkpoint not found: {path}")
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device=device)
    except Exception as exc:  # safetensors raises its own SafetensorError for corrupt headers
        raise HostError(f"{path.name} is not a readable safetensors file: {exc}") from exc


def _infotext(req: GenerationRequest, seed: int, sampler: str, ckpt: str) -> str:
    lines = [req.prompt]
    if req.negative_prompt:
        lines.append(f"Negative prompt: {req.negative_prompt}")
    lines.append(
        f"Steps: {req.steps}, Sampler: {sampler}, CFG scale: {req.cfg_scale}, Seed: {seed}, "
        f"Size: {req.width}x{req.height}, Model: {ckpt}"
    )
    return "\n".join(lines)


class DiffusersHost:
    """A Host over one single-file checkpoint, run with diffusers.

    Args:
        checkpoint (`str` or `Path`): a ``.safetensors`` SD1.5 or SDXL checkpoint in original key layout.
        tokenizer_dir (`str` or `Path`, *optional*): where the CLIP tokenizer files are, when they are
            neither beside the checkpoint nor in the local Hugging Face cache.
        device (`str`, *optional*): ``"cuda"`` when available, else ``"cpu"``.
        prediction (`str`, *optional*): ``"eps"`` or ``"v"``; single files do not say, so SD1/SDXL
            default to ``"eps"``.
    """

    name = "diffusers"

    def __init__(
        self,
        checkpoint: str | Path,
        tokenizer_dir: str | Path | None = None,
        device: str | None = None,
        prediction: str | None = None,
    ) -> None:
        self.checkpoint = Path(checkpoint)
        self.tokenizer_dir = Path(tokenizer_dir) if tokenizer_dir else None
        self.device = device or _default_device()
        self._prediction = prediction
        self._parts: ModelParts | None = None
        self._views: Any = None
        self._progress: Progress = NullProgress()
        self._lock = threading.RLock()
        self.load_seconds = 0.0
        from .diffusers_lora import FileNetworks

        self._file_networks = FileNetworks()

    # -- Host protocol -------------------------------------------------------------------------
    def model(self) -> ModelParts:
        with self._lock:
            if self._parts is None:
                self._parts = self._load()
            return self._parts

    @property
    def progress(self) -> Progress:
        return self._progress

    @progress.setter
    def progress(self, value: Progress) -> None:
        self._progress = value

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One job at a time on this model; nothing else shares it."""
        with self._lock:
            yield

    def views(self) -> Any:
        """The zero-copy diffusers/transformers modules over the loaded weights (built once)."""
        from lora_bakery.trainer.models import build_views

        with self._lock:
            if self._views is None:
                parts = self.model()
                self._views = build_views(parts.parameters, parts.architecture)
            return self._views

    def generate(self, requests: Sequence[GenerationRequest], progress: Progress | None = None) -> list[GeneratedImage]:
        """txt2img for each request with a diffusers pipeline assembled from the views.

        Each request's LoRAs (kohya/LyCORIS files, te/unet multipliers, lbw block weights) are
        applied to the views for that request only and removed after (``diffusers_lora``): the
        host's tensors are never written.
        """
        import torch

        from .diffusers_lora import applied_loras

        progress = progress or self._progress
        out: list[GeneratedImage] = []
        with self._lock:
            pipe_factory = self._pipeline_factory()
            progress.begin(sum(r.steps * r.batch_size for r in requests), "Generating")
            try:
                for req in requests:
                    if progress.interrupted:
                        break
                    sampler, pipe = pipe_factory(req.sampler)
                    seed = req.seed if req.seed >= 0 else random.randrange(2**32)
                    with applied_loras(self.views(), req.loras, self._file_networks):
                        for i in range(req.batch_size):
                            if progress.interrupted:
                                break
                            image = self._run_pipe(pipe, req, seed + i, progress, torch)
                            out.append(GeneratedImage(
                                image=image, seed=seed + i, prompt=req.prompt, negative_prompt=req.negative_prompt,
                                width=req.width, height=req.height, steps=req.steps, cfg_scale=req.cfg_scale,
                                sampler=sampler, infotext=_infotext(req, seed + i, sampler, self.checkpoint.name),
                            ))
                            progress.preview(image)
            finally:
                progress.end()
        return out

    # -- internals -----------------------------------------------------------------------------
    def _load(self) -> ModelParts:
        from lora_bakery.trainer.models import detect_architecture

        start = time.perf_counter()
        state = _load_state_dict(self.checkpoint, self.device)
        try:
            arch = detect_architecture(state.keys())
        except ValueError as exc:
            raise HostError(f"{self.checkpoint.name}: {exc}") from exc
        if arch == "sd2":
            raise HostError(f"{self.checkpoint.name} is an SD2.x checkpoint; LoRA Bakery supports SD1.5 and SDXL for now.")
        tokenizers = find_tokenizers(self.checkpoint, 2 if arch == "sdxl" else 1, self.tokenizer_dir)
        self.load_seconds = time.perf_counter() - start
        return ModelParts(
            architecture=arch,
            prediction=self._prediction or "eps",  # type: ignore[arg-type]
            parameters=state,
            tokenizers=tokenizers,
            checkpoint_name=self.checkpoint.name,
            checkpoint_path=str(self.checkpoint),
        )

    def _pipeline_factory(self) -> Any:
        """Return ``sampler_name -> (name, pipeline)``; pipelines share the view modules (no copies)."""
        import diffusers

        from lora_bakery.trainer.models import noise_scheduler_config

        from .samplers import make_scheduler

        parts = self.model()
        views = self.views()
        base = noise_scheduler_config(parts.architecture, parts.prediction)

        def factory(sampler: str | None) -> tuple[str, Any]:
            name, scheduler = make_scheduler(sampler, base)
            if parts.architecture == "sdxl":
                te1, te2 = views.text_encoders
                pipe = diffusers.StableDiffusionXLPipeline(
                    vae=views.vae, text_encoder=te1, text_encoder_2=te2, tokenizer=parts.tokenizers[0],
                    tokenizer_2=parts.tokenizers[1], unet=views.unet, scheduler=scheduler,
                )
            else:
                pipe = diffusers.StableDiffusionPipeline(
                    vae=views.vae, text_encoder=views.text_encoders[0], tokenizer=parts.tokenizers[0],
                    unet=views.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                    requires_safety_checker=False,
                )
            pipe.set_progress_bar_config(disable=True)
            return name, pipe

        return factory

    def _run_pipe(self, pipe: Any, req: GenerationRequest, seed: int, progress: Progress, torch: Any) -> Any:
        generator = torch.Generator(device="cpu").manual_seed(seed)

        def on_step_end(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            progress.step(1)
            if progress.interrupted:
                p._interrupt = True
            return kwargs

        kwargs: dict[str, Any] = {}
        parts = self.model()
        if parts.architecture != "sdxl" and parts.clip_skip > 1:
            kwargs["clip_skip"] = parts.clip_skip - 1
        with torch.no_grad():
            result = pipe(
                prompt=req.prompt, negative_prompt=req.negative_prompt or None, width=req.width,
                height=req.height, num_inference_steps=req.steps, guidance_scale=req.cfg_scale,
                generator=generator, callback_on_step_end=on_step_end, **kwargs,
            )
        return result.images[0]


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"
