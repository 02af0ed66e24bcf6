"""The training loop: one object per run, from the host's model to the saved files.

:func:`lora_bakery.trainer.train.train` builds a :class:`Run` and calls it. Everything the run
changes on the host's side (adapters routed into its layers, train mode, checkpointing, flags) is
given back in ``finally``, so the host's model is bitwise what it was, whatever happened.
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import ConfigError, TrainConfig
from ..memory import is_out_of_memory
from ..saving.run_files import clip_skip_of
from . import outputs, placing, vram
from .distributed import Distributed
from .graphs import GraphedUNet, graph_blockers
from .plot import ScalarLog, write_loss_plot
from .precision import choose_precision
from .prompts import load_sample_prompts
from .setup import (
    HostState,
    loss_options,
    network_options,
    noise_options,
    optimizer_and_scheduler,
    plan_schedule,
    prepare_modules,
)
from .state import LoopPosition, load_state, read_state, save_state
from .text import TextConditioner
from .types import SamplePrompt, StepInfo, TrainCallbacks, TrainError, TrainResult


class Run:
    """One training run. Build with the same arguments as :func:`~lora_bakery.trainer.train.train`."""

    def __init__(self, config: TrainConfig, parts: Any, progress: Any, sampler: Callable | None,
                 callbacks: TrainCallbacks | None, views: Any = None) -> None:
        self.config = config
        self.parts = parts
        self.progress = progress
        self.sampler = sampler
        self.callbacks = callbacks or TrainCallbacks()
        self.result = TrainResult()
        self.dist = Distributed()
        self.output_dir = Path(config.saving.output_dir)
        self.name = config.saving.output_name
        self.network: Any = None
        self.last_good: Path | None = None
        self.views = views
        self.placement: Any = None

    # -- messages -------------------------------------------------------------------------------
    def note(self, text: str) -> None:
        """A line for the log: kept in the result and passed to ``progress.log`` when it has one."""
        self.result.messages.append(text)
        log = getattr(self.progress, "log", None)
        if callable(log) and self.dist.is_main:
            log(text)

    # -- entry ----------------------------------------------------------------------------------
    def __call__(self) -> TrainResult:
        host = HostState.record(self.parts.parameters)
        start = time.perf_counter()
        try:
            self._setup(host)
            self._loop()
        except TrainError as exc:
            exc.result = exc.result or self.result
            raise
        except Exception as exc:
            if is_out_of_memory(exc):
                self._free()
                raise TrainError(vram.oom_message(self, exc), reason="oom", result=self.result) from exc
            raise
        finally:
            try:
                if self.network is not None:
                    self.network.remove()
                if self.placement is not None:
                    self.placement.restore()
            finally:
                host.restore(self.parts.parameters)
                self.result.seconds = time.perf_counter() - start
                self._free()
        return self.result

    def _free(self) -> None:
        if getattr(self, "graphs", None) is not None:
            self.graphs.close()
            self.graphs = None
        for name in ("optimizer", "scheduler", "cache"):
            if hasattr(self, name):
                setattr(self, name, None)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- setup ----------------------------------------------------------------------------------
    def _setup(self, host: HostState) -> None:
        from ..data.batching import BucketBatcher, dataset_ss_metadata
        from ..data.dataset import DataError, build_plan
        from ..models import build_views
        from ..noise import NoiseSchedule

        cfg, parts = self.config, self.parts
        arch = parts.architecture
        try:
            cfg.check_ready()
            cfg.network.check_architecture(arch)
            self.plan = build_plan(cfg, arch)
        except (ConfigError, DataError) as exc:
            raise TrainError(str(exc), reason="config" if isinstance(exc, ConfigError) else "data") from exc
        self.result.skipped = list(self.plan.skipped)
        for line in self.plan.report() + self.plan.warnings + cfg.warnings():
            self.note(line)  # before the first step: what is left out is never silent
        seed = cfg.training.seed
        _seed_everything(seed)
        if self.views is None:
            self.views = build_views(parts.parameters, arch)
        elif self.views.architecture != arch:
            raise TrainError(f"the views given are {self.views.architecture}, the model is {arch}", reason="config")
        self.placement = placing.view_placement(self)
        device = self.placement.device if self.placement is not None else None
        self.precision = choose_precision(cfg.training.mixed_precision, next(self.views.unet.parameters()), device)
        for message in self.precision.messages + self.views.report.messages:
            self.note(message)
        self.device = self.precision.device
        placing.check_fp8(self)
        self.v_pred = cfg.training.v_pred if cfg.training.v_pred is not None else parts.prediction == "v"
        self.batcher = BucketBatcher(self.plan, seed)
        total_batches = self.dist.batches_per_epoch(self.batcher.batches_per_epoch())
        self.schedule = plan_schedule(total_batches, cfg.training.grad_accum, cfg.training.epochs, cfg.training.max_steps)
        self.result.total_steps = self.schedule.total_steps
        self.noise_schedule = NoiseSchedule.create(zero_terminal_snr=cfg.training.zero_terminal_snr)
        self.loss_opts, self.noise_opts = loss_options(cfg), noise_options(cfg)
        try:
            self.loss_opts.check(v_prediction=self.v_pred)
        except ValueError as exc:
            raise TrainError(str(exc), reason="config") from exc
        self._build_network(arch)
        prepare_modules(self.views, host, self.train_te, cfg.training.gradient_checkpointing)
        self.network.apply()
        self.graphs = self._graphs()
        self.clip_skip = clip_skip_of(cfg.training.clip_skip, getattr(parts, "clip_skip", None), arch)
        self.text = TextConditioner(arch, self.views.text_encoders, parts.tokenizers, self.clip_skip, cfg.training.max_token_length)
        placing.begin(self)
        with placing.vae_placed(self):
            self._cache_latents()
        placing.prepare_text(self)
        placing.bring_unet(self)
        vram.note_estimate(self)
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.scaler = self.precision.scaler()
        res = self.plan.datasets[0]["resolution"]
        self.meta = outputs.MetadataBuilder(
            cfg, parts, v_pred=self.v_pred, clip_skip=self.clip_skip, epochs=self.schedule.epochs,
            total_steps=self.schedule.total_steps,
            dataset_meta=dataset_ss_metadata(
                self.plan, self.batcher, folder_mode=cfg.dataset.folder_mode,
                total_batch_size=cfg.training.batch_size * self.dist.world * cfg.training.grad_accum,
            ),
            network_meta=self.network.metadata(), optimizer=self.optimizer,
            resolution=(res, res) if isinstance(res, int) else (res[0], res[1]),
        )
        self.position = LoopPosition()
        if cfg.saving.resume:
            self._resume(cfg.saving.resume)
        self._check_outputs()
        self.prompts = self._sample_prompts()
        log_dir = Path(cfg.logging.log_dir) if cfg.logging.log_dir else self.output_dir / "logs"
        self.scalars = ScalarLog(log_dir / self.name, cfg.logging.tensorboard and self.dist.is_main)
        if self.scalars.note:
            self.note(self.scalars.note)

    def _graphs(self) -> GraphedUNet | None:
        """CUDA graphs for the U-Net step when this run allows them (the log says why not, on a GPU)."""
        cfg = self.config
        net = cfg.network
        random_parts = [name for name in ("dropout", "rank_dropout", "module_dropout") if getattr(net, name)]
        randomness = f"adapter randomness (network.{', network.'.join(random_parts)})" if random_parts else (
            "DyLoRA's random rank band" if net.type == "dylora" else None)
        blockers = graph_blockers(device=self.device, enabled=cfg.training.cuda_graphs, grad_accum=cfg.training.grad_accum,
                                  checkpointing=cfg.training.gradient_checkpointing, adapter_randomness=randomness)
        if blockers:
            if self.device.type == "cuda" and cfg.training.cuda_graphs:
                self.note("CUDA graphs not used: " + "; ".join(blockers))
            return None
        return GraphedUNet(self.views.unet, self.unet_params, self.precision.autocast_dtype, self.note)

    def _build_network(self, arch: str) -> None:
        from ..adapters import block_values, create_network

        cfg = self.config
        try:
            options = network_options(cfg, arch)
        except ValueError as exc:
            raise TrainError(f"network: {exc}", reason="config") from exc
        torch.manual_seed(cfg.training.seed)  # the adapters' initial weights
        self.network = create_network(
            self.views, cfg.network.type, options,
            train_unet=cfg.network.train_unet, train_text_encoder=cfg.network.train_text_encoder,
        )
        opt = cfg.optimizer
        unet_lr = opt.unet_lr if opt.unet_lr is not None else opt.lr
        te_lr = opt.text_encoder_lr if opt.text_encoder_lr is not None else opt.lr
        weights = block_values(cfg.network.block_lr_weights, arch) if cfg.network.block_lr_weights else None
        groups = self.network.trainable_parameters(unet_lr, te_lr, weights)
        self.train_te = any(g["name"] == "text_encoder" for g in groups)
        self.params = [p for g in groups for p in g["params"]]
        self.unet_params = [p for g in groups if g["name"] != "text_encoder" for p in g["params"]]
        if not self.params:
            raise TrainError("nothing to train: every learning rate is 0 or no layer was adapted", reason="config")
        try:
            self.optimizer, self.scheduler = optimizer_and_scheduler(cfg, groups, self.schedule.total_steps)
        except (ValueError, RuntimeError) as exc:  # bad optimizer args, missing package
            raise TrainError(f"optimizer: {exc}", reason="config") from exc
        self.note(
            f"{cfg.network.type}: {self.network.count(False)} U-Net and {self.network.count(True)} text-encoder "
            f"layers, {sum(p.numel() for p in self.params):,} trained parameters"
        )

    def _cache_latents(self) -> None:
        from ..data.latents import LatentCache, LiveLatents

        tr = self.config.training
        self.scaling = float(dict(self.views.vae.config).get("scaling_factor", 0.18215))
        if any(it.random_crop or it.color_aug for it in self.plan.items):
            self.cache = LiveLatents(self.plan, self.views.vae)
            self.note("random_crop / color_aug: latents are encoded every step (kohya does the same; slower than "
                      "cached latents)")
            return
        self.cache = LatentCache(self.plan, self.views.vae, to_disk=tr.cache_latents_to_disk, seed=tr.seed)
        items = len(self.plan.items)
        self.progress.begin(items, "Caching latents")
        done = [0]

        def tick(n: int, total: int) -> None:
            self.progress.step(n - done[0], f"latents {n}/{total}")
            done[0] = n

        try:
            report = self.cache.prepare(tick)
        except ValueError as exc:  # DataError: an image that cannot be decoded, named in the message
            raise TrainError(str(exc), reason="data") from exc
        if report.reused:
            self.note(f"latents: {report.reused} reused from disk, {report.encoded} encoded")
        for path, reason in report.rejected[:5]:
            self.note(f"latent cache {path.name} not reused: {reason}")
        self.progress.end()

    def _resume(self, folder: str) -> None:
        try:
            saved = read_state(folder)
            previous = saved.get("config", {}).get("network", {})
            current = self.config.to_dict().get("network", {})
            for key in ("type", "dim", "conv_dim", "train_unet", "train_text_encoder"):
                if key in previous and previous.get(key) != current.get(key):
                    raise ValueError(f"the state was trained with network.{key} = {previous.get(key)!r}, this config has {current.get(key)!r}")
            self.position = load_state(folder, self.network, self.optimizer, self.scheduler, self.generator, self.scaler)
        except (ValueError, KeyError, OSError) as exc:
            raise TrainError(f"cannot resume from {folder}: {exc}", reason="state") from exc
        p = self.position
        self.result.losses, self.result.epoch_losses = list(p.losses), list(p.epoch_losses)
        self.result.files = [Path(f) for f in p.files if Path(f).is_file()]
        self.last_good = self.result.files[-1] if self.result.files else None
        self.note(f"resumed from {folder}: epoch {p.epoch}, {p.batch} batches into it, optimizer step {p.step}")

    def _check_outputs(self) -> None:
        sv = self.config.saving
        if sv.overwrite or not self.dist.is_main:
            return
        planned = outputs.planned_files(self.output_dir, self.name, self.position.epoch, self.schedule.epochs, sv.save_every_n_epochs)
        existing = [p for p in planned if p.exists()]
        if existing:
            raise TrainError(
                f"{existing[0]} already exists; choose another output name or allow overwriting (saving.overwrite)",
                reason="config",
            )

    def _sample_prompts(self) -> list[SamplePrompt]:
        s = self.config.sampling
        if self.sampler is None or not s.every_n_epochs or not (s.prompts or s.prompts_file):
            return []
        res = self.plan.datasets[0]["resolution"]
        w, h = (res, res) if isinstance(res, int) else res
        defaults = SamplePrompt("", s.negative, s.seed, s.width or w, s.height or h, s.steps, s.cfg_scale, s.sampler)
        try:
            return load_sample_prompts(s.prompts, s.prompts_file, defaults)
        except ValueError as exc:
            raise TrainError(str(exc), reason="config") from exc

    # -- loop -----------------------------------------------------------------------------------
    def _loop(self) -> None:
        from .epoch import run_epoch

        sched = self.schedule
        self.progress.begin(sched.total_steps, f"Baking {self.name}")
        self.started = time.perf_counter()
        self.start_step = self.position.step
        try:
            while self.position.epoch <= sched.epochs:
                outcome = run_epoch(self)
                if outcome == "interrupted":
                    self.interrupt()
                    return
                if outcome == "max_steps":
                    break
                self._end_epoch()
                if self.position.step >= sched.total_steps:
                    break
            self._finish()
        finally:
            self.scalars.close()
            self.progress.end()

    def _end_epoch(self) -> None:
        from .epoch import epoch_mean

        p, sched, sv = self.position, self.schedule, self.config.saving
        epoch = p.epoch
        self.result.epoch_losses.append(epoch_mean(self))
        self.result.epochs_done = epoch
        files: list[Path] = []
        if outputs.saves_epoch(epoch, sv.save_every_n_epochs, sched.epochs) and self.dist.is_main:
            path = outputs.save_lora(outputs.epoch_file(self.output_dir, self.name, epoch), self.network,
                                     self.meta.for_save(epoch, p.step), sv.save_precision, sv.overwrite)
            files.append(path)
            self._remember(path)
            old = outputs.expired_epoch(epoch, sv.save_every_n_epochs, sv.keep_last_n)
            if old is not None:
                self._drop(outputs.epoch_file(self.output_dir, self.name, old))
        p.epoch, p.batch = epoch + 1, 0
        if files and sv.save_state and self.dist.is_main:
            self._save_state()
        self._plot()
        self._samples(epoch, files[0] if files else None)
        self.callbacks.on_epoch_end(self._info(epoch), files)
        self.dist.barrier()

    def _finish(self) -> None:
        p, sv = self.position, self.config.saving
        if self.dist.is_main:
            path = outputs.save_lora(outputs.final_file(self.output_dir, self.name), self.network,
                                     self.meta.for_save(self.schedule.epochs, p.step), sv.save_precision, sv.overwrite)
            self._remember(path)
            self.result.final = path
            if sv.save_state:
                self._save_state()
        self.result.status = "finished"
        self.dist.barrier()

    def interrupt(self) -> None:
        """Save the current weights and a resumable state, then stop (called between optimizer steps)."""
        if self.dist.is_main:
            sv = self.config.saving
            path = outputs.save_lora(outputs.interrupted_file(self.output_dir, self.name), self.network,
                                     self.meta.for_save(self.position.epoch, self.position.step), sv.save_precision, True)
            self.result.interrupted_file = path
            self._save_state()
            self._plot()
            self.note(f"interrupted at step {self.position.step}: saved {path.name} and {self.result.state_dir}")
        self.result.status = "interrupted"
        self.dist.barrier()

    def _remember(self, path: Path) -> None:
        self.result.files.append(path)
        self.position.files.append(str(path))
        self.last_good = path

    def _drop(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.result.files = [f for f in self.result.files if f != path]
        self.position.files = [f for f in self.position.files if f != str(path)]

    def _save_state(self) -> None:
        p = self.position
        p.losses, p.epoch_losses = list(self.result.losses), list(self.result.epoch_losses)
        folder = outputs.state_dir(self.output_dir, self.name)
        save_state(folder, p, self.network, self.optimizer, self.scheduler, self.generator, self.scaler, self.config.to_dict())
        self.result.state_dir = folder

    def _plot(self) -> None:
        if not self.config.logging.loss_plot or not self.dist.is_main or not self.result.losses:
            return
        path = self.output_dir / f"{self.name}-loss.png"
        ends = [self.schedule.steps_per_epoch * e for e in range(1, self.result.epochs_done + 1)]
        note = write_loss_plot(path, self.result.losses, ends, title=self.name)
        if note:
            if note not in self.result.messages:
                self.note(note)
        else:
            self.result.loss_plot = path

    def _samples(self, epoch: int, lora_file: Path | None) -> None:
        from .sampling import make_samples

        every = self.config.sampling.every_n_epochs
        if not self.prompts or not every or epoch % every or not self.dist.is_main:
            return
        make_samples(self, epoch, lora_file)

    def _info(self, epoch: int) -> StepInfo:
        loss = self.result.losses[-1] if self.result.losses else float("nan")
        lr = float(self.optimizer.param_groups[0]["lr"])
        return StepInfo(epoch, self.position.step, self.position.images_seen, loss, lr, self.network)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


__all__ = ["Run"]
