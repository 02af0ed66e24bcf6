"""``train_leco()``: train a concept slider on the host's own model, headless.

The LECO sub-tab, ``bakery leco CONFIG.toml`` and the demo all call this one function. The caller
passes the host's model (``ModelParts``), a progress object and optionally a previewer; the run
builds zero-copy views (or takes the caller's), routes a slider LoRA into the U-Net, caches the
prompt embeddings, trains (:mod:`.step`), saves every N steps with previews, and on any exit takes
the slider out again, so the host's model is exactly what it was.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import ConfigError
from . import files
from .config import LecoConfig
from .embeds import PromptCache
from .modules import build_slider_network
from .preview import PreviewRequest, done_hint, extremes_change, make_grid, weight_label
from .step import SliderStep, StepOutput

OPTIMIZER_NAMES = {"adamw": "AdamW", "prodigy": "Prodigy", "lion": "Lion"}


class LecoError(RuntimeError):
    """Training stopped for a reason the user can act on; the message says what to do.

    Attributes:
        reason (`str`): ``"config"``, ``"nan"``, ``"precision"``, ``"state"`` or ``"exists"``.
        result (`LecoResult`, *optional*): what was done before the stop (files kept, losses).
    """

    def __init__(self, message: str, *, reason: str = "error", result: LecoResult | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.result = result


@dataclass
class LecoResult:
    """What a LECO run produced.

    Attributes:
        status (`str`): ``"finished"`` or ``"interrupted"``.
        final (`Path`, *optional*): ``name.safetensors`` (absent when interrupted).
        files (`list[Path]`): every slider file written, in order.
        interrupted_file (`Path`, *optional*): written when the run was interrupted.
        state_dir (`Path`, *optional*): the resumable state folder last written.
        steps (`int`): optimizer steps done (including resumed ones).
        total_steps (`int`): steps planned.
        losses (`list[float]`): loss per step.
        previews (`list[Path]`): preview grids written.
        changes (`list[tuple[int, float]]`): (step, change of the extremes since the previous save).
        done_hint (`str`, *optional*): set once the extremes stopped changing.
        messages (`list[str]`): notes (precision, previews skipped, layer count...).
        seconds (`float`): wall time of the loop.
    """

    status: str = "finished"
    final: Path | None = None
    files: list[Path] = field(default_factory=list)
    interrupted_file: Path | None = None
    state_dir: Path | None = None
    steps: int = 0
    total_steps: int = 0
    losses: list[float] = field(default_factory=list)
    previews: list[Path] = field(default_factory=list)
    changes: list[tuple[int, float]] = field(default_factory=list)
    done_hint: str | None = None
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


class LecoCallbacks:
    """Hooks a caller may override (the UI's live loss and grid). All no-ops by default."""

    def on_step(self, step: int, total: int, output: StepOutput, lr: float) -> None:
        """After every optimizer step."""

    def on_save(self, step: int, path: Path, grid: Path | None, change: float | None) -> None:
        """After each file (and its preview grid, if any) is written."""


Previewer = Callable[[PreviewRequest, "Path | None"], Any]


def choose_autocast(precision: str, base_dtype: torch.dtype, device: torch.device) -> tuple[torch.dtype | None, list[str]]:
    """The autocast dtype for ``training.precision`` on this host (``None`` = plain fp32).

    Raises:
        LecoError: fp16 requested, or an fp16-only GPU holding an fp16 model (fp32 would need a copy).
    """
    if precision == "fp16":
        from .config import FP16_REFUSED

        raise LecoError(FP16_REFUSED, reason="precision")
    bf16_ok = device.type != "cuda" or torch.cuda.is_bf16_supported()
    if precision == "bf16":
        if bf16_ok:
            return torch.bfloat16, []
        if base_dtype == torch.float32:
            return None, ["This GPU has no bf16; training in fp32 instead."]
    elif base_dtype == torch.float32:
        return None, []
    if bf16_ok:
        return torch.bfloat16, [f"The model is loaded in {str(base_dtype).replace('torch.', '')}; fp32 would need a second copy, so training autocasts to bf16."]
    raise LecoError(
        "The model is loaded in fp16 and this GPU has no bf16; LECO in fp16 turns NaN. Load the model in "
        "fp32 (A1111: --no-half) to train sliders on this GPU.",
        reason="precision",
    )


class LecoRun:
    """One LECO run; build with :func:`train_leco`'s arguments and call it."""

    def __init__(self, config: LecoConfig, parts: Any, progress: Any, previewer: Previewer | None,
                 views: Any, callbacks: LecoCallbacks | None) -> None:
        try:
            config.check_ready()
        except ConfigError as exc:
            raise LecoError(str(exc), reason="config") from None
        self.config = config
        self.parts = parts
        self.progress = progress
        self.previewer = previewer if config.preview.enabled else None
        self.callbacks = callbacks or LecoCallbacks()
        self.result = LecoResult(total_steps=config.training.steps, messages=list(config.warnings()))
        if views is None:
            from ..models import build_views

            views = build_views(parts.parameters, parts.architecture)
        self.views = views
        self.placement: Any = None
        self.output_dir = Path(config.saving.output_dir)
        self.name = config.saving.output_name
        self.previous_images: list[Any] = []
        self.previous_step = 0

    def note(self, text: str) -> None:
        self.result.messages.append(text)
        log = getattr(self.progress, "log", None)
        if callable(log):
            log(text)

    # -- setup ---------------------------------------------------------------------------------
    def _setup(self) -> None:
        import diffusers

        from ..models import noise_scheduler_config
        from ..optim import build_optimizer, build_scheduler

        t = self.config.training
        unet = self.views.unet
        base = next(unet.parameters())
        autocast_dtype, notes = choose_autocast(t.precision, base.dtype, base.device)
        for text in notes:
            self.note(text)
        self.network = build_slider_network(self.views, self.config.network, t.seed)
        self.note(f"slider: {len(self.network.adapters)} U-Net layers ({self.config.network.modules}), rank {self.config.network.dim}, alpha {self.config.network.alpha:g}")
        groups = self.network.trainable_parameters(t.lr, None)
        self.optimizer = build_optimizer(OPTIMIZER_NAMES[t.optimizer], groups, t.lr, t.optimizer_args or None)
        self.lr_scheduler = build_scheduler(t.scheduler, self.optimizer, t.steps)
        self.generator = torch.Generator().manual_seed(t.seed)
        entries = self.config.expanded_prompts()
        cache = PromptCache(self.views, list(self.parts.tokenizers), getattr(self.parts, "clip_skip", 1), base.dtype)
        prompts = {p for e in entries for p in e.resolved()} | {a.prompt for a in self.config.anchors}
        cache.encode_all(prompts)
        ddim = diffusers.DDIMScheduler.from_config(noise_scheduler_config(self.parts.architecture, self.parts.prediction))

        def autocast() -> Any:
            if autocast_dtype is None:
                return contextlib.nullcontext()
            return torch.autocast(device_type=base.device.type, dtype=autocast_dtype)

        self.stepper = SliderStep(
            unet, self.network, cache, ddim, entries, self.config.anchors,
            max_denoising_steps=t.max_denoising_steps, latent_cfg=t.latent_cfg, bidirectional=t.bidirectional,
            anchor_weight=t.anchor_weight, autocast=autocast,
        )
        self.meta = files.run_metadata(self.config, self.parts, self.network, self.optimizer, entries[0].resolution)

    def _resume(self) -> int:
        from ..loop.state import load_state

        folder = self.config.saving.resume
        if not folder:
            return 0
        try:
            position = load_state(folder, self.network, self.optimizer, self.lr_scheduler, self.generator)
        except (ValueError, OSError, KeyError) as exc:
            raise LecoError(f"cannot resume from {folder}: {exc}", reason="state") from None
        self.result.losses = list(position.losses)
        self.result.files = [Path(p) for p in position.files if Path(p).is_file()]
        self.note(f"resumed at step {position.step} from {folder}")
        return position.step

    def _check_outputs(self, start: int) -> None:
        if self.config.saving.overwrite:
            return
        t = self.config
        existing = [p for p in files.planned_files(self.output_dir, self.name, start, t.training.steps, t.saving.save_every) if p.exists()]
        if existing:
            raise LecoError(
                f"{existing[0]} already exists; choose another output name or turn on saving.overwrite",
                reason="exists",
            )

    # -- saving and previews -------------------------------------------------------------------
    def _save(self, path: Path, step: int, state: bool = False) -> Path:
        """Write one slider file, and the resumable state when ``state`` (asked for, or an interrupt)."""
        from ..loop.state import LoopPosition, save_state
        from ..saving import save_network

        sv = self.config.saving
        save_network(path, self.network.kohya_state_dict(), files.for_save(self.meta, step), precision=sv.precision, overwrite=True)
        if path not in self.result.files:
            self.result.files.append(path)
        if state:
            position = LoopPosition(epoch=1, batch=step, step=step, losses=list(self.result.losses),
                                    files=[str(p) for p in self.result.files])
            folder = files.state_dir(self.output_dir, self.name)
            save_state(folder, position, self.network, self.optimizer, self.lr_scheduler, self.generator, config=self.config.to_dict())
            self.result.state_dir = folder
        return path

    def _preview(self, step: int, path: Path) -> Path | None:
        """Render the grid for the file just saved; a failing previewer is switched off with a note."""
        if self.previewer is None:
            return None
        pv = self.config.preview
        live = bool(getattr(self.previewer, "uses_training_views", False))
        images = []
        try:
            if not live:
                self.network.remove()
            with self.placement.lend() if self.placement is not None else contextlib.nullcontext():
                for m in pv.multipliers:
                    request = PreviewRequest(self.config.preview_prompt(), pv.negative_prompt, pv.seed, pv.width,
                                             pv.height, pv.steps, pv.cfg_scale, float(m))
                    if live:
                        self.network.set_multiplier(float(m))
                    images.append(self.previewer(request, None if live else path))
        except Exception as exc:  # previews never stop the training
            self.note(f"previews switched off: {type(exc).__name__}: {exc}")
            self.previewer = None
            return None
        finally:
            self.network.set_multiplier(1.0)
            if not live:
                self.network.apply()
        grid = make_grid(images, [weight_label(float(m)) for m in pv.multipliers])
        grid_path = files.save_png(grid, files.preview_file(self.output_dir, self.name, step))
        self.result.previews.append(grid_path)
        self.progress.preview(grid)
        change = extremes_change(self.previous_images, images)
        if change is not None:
            self.result.changes.append((step, change))
            hint = done_hint(step, self.previous_step, change)
            if hint and self.result.done_hint is None:
                self.result.done_hint = hint
                self.note(hint)
        self.previous_images, self.previous_step = images, step
        return grid_path

    def _save_with_preview(self, path: Path, step: int) -> None:
        self._save(path, step, state=self.config.saving.save_state)
        grid = self._preview(step, path)
        change = self.result.changes[-1][1] if self.result.changes and self.result.changes[-1][0] == step else None
        self.callbacks.on_save(step, path, grid, change)

    # -- the loop ------------------------------------------------------------------------------
    def __call__(self) -> LecoResult:
        host = getattr(self.parts, "placement", None)
        if host is None:
            return self._run()
        from ..placement import ViewPlacement

        # A1111 --medvram/--lowvram: text encoders and U-Net on the GPU while the prompts are encoded,
        # then only the U-Net; the webui's own placement is given back however the run ends
        self.placement = ViewPlacement(self.views, self.parts.parameters, host.device, host)
        try:
            self.placement.begin()
            self.placement.to_device("text_encoders")
            self.placement.to_device("unet")
            self.note(f"{host.description}: U-Net (and text encoders while the prompts are encoded) on the GPU for "
                      "this run; the webui's placement is restored afterwards.")
            return self._run()
        finally:
            self.placement.restore()

    def _run(self) -> LecoResult:
        started = time.perf_counter()
        t = self.config.training
        self._setup()
        if self.placement is not None:
            self.placement.offload("text_encoders")
        start = self._resume()
        self._check_outputs(start)
        saves = set(files.save_steps(start, t.steps, self.config.saving.save_every))
        self.network.apply()
        self.progress.begin(t.steps - start, f"LECO {self.name}")
        try:
            for step in range(start, t.steps):
                if self.progress.interrupted:
                    return self._interrupt(step, started)
                self._train_step(step)
                if step + 1 in saves:
                    self._save_with_preview(files.step_file(self.output_dir, self.name, step + 1), step + 1)
            self.result.final = files.final_file(self.output_dir, self.name)
            self._save_with_preview(self.result.final, t.steps)
            self.result.steps = t.steps
        finally:
            self.network.remove()
            self.progress.end()
            self.result.seconds = time.perf_counter() - started
        return self.result

    def _train_step(self, step: int) -> None:
        plan = self.stepper.plan(self.generator)
        output = self.stepper.run(plan)
        if not math.isfinite(output.loss):
            self.optimizer.zero_grad(set_to_none=True)
            kept = self.result.files[-1] if self.result.files else None
            where = f"; the last good file is {kept}" if kept else "; no file was saved before it"
            raise LecoError(
                f"the loss became {output.loss} at step {step + 1} (k={output.k}){where}. Lower the learning "
                "rate or guidance_scale, or train in fp32.",
                reason="nan", result=self.result,
            )
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.result.losses.append(output.loss)
        self.result.steps = step + 1
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.progress.step(1, f"loss {output.loss:.4g}")
        self.callbacks.on_step(step + 1, self.config.training.steps, output, lr)

    def _interrupt(self, step: int, started: float) -> LecoResult:
        self.result.status = "interrupted"
        self.result.steps = step
        path = files.interrupted_file(self.output_dir, self.name)
        self._save(path, step, state=True)
        self.result.interrupted_file = path
        self.note(f"interrupted at step {step}: saved {path.name}; resume from {self.result.state_dir}")
        return self.result


def train_leco(
    config: LecoConfig,
    parts: Any,
    progress: Any = None,
    previewer: Previewer | None = None,
    *,
    views: Any = None,
    callbacks: LecoCallbacks | None = None,
) -> LecoResult:
    """Train the slider ``config`` describes on the host's model and write kohya-compatible files.

    Args:
        config (`LecoConfig`): prompts, network, training, saving, preview.
        parts (`ModelParts`): the host's model (``architecture``, ``prediction``, ``parameters``,
            ``tokenizers``, ``clip_skip`` and, for the metadata, checkpoint name/path/hashes).
        progress (`Progress`, *optional*): ``begin``/``step``/``preview``/``interrupted``/``end`` (and
            optionally ``log``); when ``interrupted`` turns true the run writes
            ``name-interrupted.safetensors`` and a resumable ``name-state/`` and returns.
        previewer (`Callable`, *optional*): ``previewer(PreviewRequest, lora_file) -> PIL image``
            (see :mod:`.preview`); ``None`` = no previews.
        views (`ModelViews`, *optional*): views over ``parts.parameters`` the caller already has
            (required for a previewer with ``uses_training_views``).
        callbacks (`LecoCallbacks`, *optional*): ``on_step`` / ``on_save`` hooks.

    Returns:
        `LecoResult`

    Raises:
        LecoError: bad config (fp16, nothing to train on), existing files, unusable resume state,
            or a NaN loss (``error.result`` names the last good file).
    """
    from ..loop.types import QuietProgress

    return LecoRun(config, parts, progress or QuietProgress(), previewer, views, callbacks)()


__all__ = ["LecoCallbacks", "LecoError", "LecoResult", "LecoRun", "Previewer", "choose_autocast", "train_leco"]
