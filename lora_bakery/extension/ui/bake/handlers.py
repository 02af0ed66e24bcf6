"""What the Bake tab's buttons do.

Values arrive by field name (``form.NAMES`` order, after the hidden base JSON). Training runs as a
job on the queue (``train()`` inside ``Host.exclusive()``, the same call as ``bakery train``), so
several clicks queue several trainings; each click's handler follows its own job with
``compat.follow_job`` and streams the progress text (epoch/step/loss/ETA), the sample images and
the loss plot as the run writes them, on gradio 3.41 and 4.x alike.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from lora_bakery.extension.allowed_folders import remember
from lora_bakery.extension.ui import compat
from lora_bakery.extension.ui.bake import form
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

#: Columns of the repeats table (``dataset.repeats.BalanceRow`` fields).
REPEATS_COLUMNS = ["folder", "images", "role", "current_repeats", "repeats", "steps_per_epoch", "total_steps", "notes"]
JOB_NAME = "Bake"


class BakeSlot:
    """The trainings this tab started (newest last), so Interrupt stops the one that is running."""

    def __init__(self) -> None:
        self.jobs: list[Any] = []

    def unfinished(self) -> list[Any]:
        """Jobs still queued or running, oldest first."""
        return [j for j in self.jobs if not j.is_finished]


def values_of(args: tuple[Any, ...]) -> dict[str, Any]:
    """Widget values (in ``form.NAMES`` order) as a name -> value dict."""
    return dict(zip(form.NAMES, args))


def samples_of(config: Any) -> list[tuple[str, str]]:
    """Gallery items ``(png, caption)`` of the sample images written so far, newest first."""
    folder = Path(config.saving.output_dir) / "sample"
    if not folder.is_dir():
        return []
    name = config.saving.output_name
    found = sorted(folder.glob(f"{name}_e*.png"), key=lambda p: (p.stat().st_mtime, p.name), reverse=True)
    return [(str(p), p.stem[len(name) + 1:]) for p in found]


def loss_plot_of(config: Any) -> str | None:
    """The loss plot PNG once the run has written it."""
    path = Path(config.saving.output_dir) / f"{config.saving.output_name}-loss.png"
    return str(path) if path.is_file() else None


def result_markdown(result: Any) -> str:
    """The run's outcome: status, counts, files, resume hint and notes."""
    lines = [f"**{html.escape(result.status)}**: {result.steps}/{result.total_steps} optimizer steps, "
             f"{result.images_seen} images, {result.epochs_done} epochs in {result.seconds:.1f} s"
             + (f", last loss {result.losses[-1]:.4g}" if result.losses else "")]
    lines += [f"- `{html.escape(str(p))}`" for p in result.files]
    if result.status == "interrupted" and result.state_dir:
        lines.append(f"Resume: put `{html.escape(str(result.state_dir))}` in *saving.resume* and bake again.")
    lines += [f"- {html.escape(n)}" for n in result.messages]
    return "\n\n".join(lines)


def _form_result(message: str, config: Any) -> tuple:
    values, base = form.from_config(config)
    return (message, base, *(values[n] for n in form.NAMES))


def _no_change(message: str) -> tuple:
    return (message, gr.update(), *(gr.update() for _ in form.NAMES))


def load_preset(name: str) -> tuple:
    """Form values for preset ``name``: (message, base, *values in ``form.NAMES`` order)."""
    from lora_bakery.trainer.config import list_presets
    from lora_bakery.trainer.config import load_preset as load

    try:
        config = load(str(name or ""))
    except Exception as exc:  # noqa: BLE001 - shown
        return _no_change(common.friendly(exc))
    about = next((p["description"] for p in list_presets() if p["name"] == name), "")
    return _form_result(f"Loaded preset **{html.escape(str(name))}**. {html.escape(about)}", config)


def load_config(path: str) -> tuple:
    """Form values from a config TOML (ours or a kohya dataset config): (message, base, *values)."""
    from lora_bakery.trainer.config import TrainConfig

    try:
        if not str(path or "").strip():
            raise ValueError("enter the path of a config .toml file")
        config = TrainConfig.load(Path(path).expanduser())
    except Exception as exc:  # noqa: BLE001 - shown
        return _no_change(common.friendly(exc))
    blocks = len(config.dataset.datasets)
    more = f" with {blocks} [[datasets]] block{'s' if blocks != 1 else ''} (kept as they are)" if blocks else ""
    return _form_result(f"Loaded `{html.escape(str(path))}`{more}.", config)


def save_config(path: str, base: str, *args: Any) -> str:
    """Write the form as a TOML file that ``bakery train`` runs unchanged."""
    try:
        if not str(path or "").strip():
            raise ValueError("enter a path for the .toml file")
        config = form.to_config(values_of(args), base)
        written = config.save(Path(path).expanduser())
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc)
    return f"Saved `{html.escape(str(written))}`. Run it headless with `bakery train {html.escape(str(written))}`."


def repeats(folder: str) -> tuple[str, Any]:
    """The Dataset tab's repeats table for a training folder: (message, table)."""
    from lora_bakery.extension.dataset.scan import scan
    from lora_bakery.extension.dataset_ops.registry import repeats_table

    try:
        if not str(folder or "").strip():
            raise ValueError("set dataset.train_data_dir (the parent of the N_name folders) first")
        root = Path(folder).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"no such folder: {root}")
        bal = repeats_table(scan(root), {})
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc), gr.update()
    rows = [{c: getattr(r, c) for c in REPEATS_COLUMNS} for r in bal.rows]
    notes = "".join(f"\n- {html.escape(n)}" for n in bal.notes)
    message = (f"{len(rows)} folder(s); main concept {bal.main_per_epoch} images per epoch, {bal.main_total} in all. "
               "*repeats* is the suggestion; the Dataset tab renames the folders." + notes)
    return message, common.frame(rows, REPEATS_COLUMNS)


def queue_markdown(slot: BakeSlot) -> str:
    """The trainings this tab started, newest first, with their state."""
    if not slot.jobs:
        return "No trainings yet."
    lines = []
    for job in reversed(slot.jobs[-10:]):
        snap = job.snapshot()
        lines.append(f"- `{html.escape(str(snap['id']))}` {html.escape(str(snap['status']))}: {html.escape(str(snap['text'] or ''))}")
    return "\n".join(lines)


def _host(ctx: UiContext) -> Any:
    if ctx.host_factory is None:
        raise ValueError("no model is available here: load a checkpoint first")
    return ctx.host_factory()


def train(ctx: UiContext, slot: BakeSlot, base: str, *args: Any) -> Iterator[tuple]:
    """Queue a training job and follow it; yields (progress HTML, result Markdown, samples, loss plot)."""
    from lora_bakery.cli.train import host_sampler
    from lora_bakery.trainer.train import train as run_train

    try:
        config = form.to_config(values_of(args), base)
        config.check_ready()
        host = _host(ctx)
        remember(config.dataset.train_data_dir, config.dataset.reg_data_dir, config.saving.output_dir)
    except Exception as exc:  # noqa: BLE001 - shown
        yield "", common.friendly(exc), gr.update(), gr.update()
        return
    box: dict[str, Any] = {}

    def work(job: Any) -> None:
        try:
            with host.exclusive():
                views = host.views() if getattr(host, "name", "") == "diffusers" else None
                sampler = host_sampler(host) if (config.sampling.prompts or config.sampling.prompts_file) else None
                box["result"] = run_train(config, host.model(), job, sampler, views=views)
        except Exception as exc:  # noqa: BLE001 - shown in the tab
            box["error"] = common.friendly(exc)
            causes = [line.strip() for line in str(exc).strip().splitlines()[1:] if line.strip()]
            if isinstance(exc, (ValueError, RuntimeError)) and causes:  # the trainer lists every cause on a line
                for line in causes:
                    job.log(line)
                box["error"] += "\n\n" + "\n".join(f"- {html.escape(line)}" for line in causes)
            kept = getattr(exc, "result", None)
            if kept is not None and kept.files:
                box["error"] += "\n\nKept: " + ", ".join(f"`{html.escape(str(p))}`" for p in kept.files)

    ahead = len(slot.unfinished())
    job = common.jobs_of(ctx).submit(JOB_NAME, work, exclusive=True)
    slot.jobs.append(job)
    waiting = f"Queued behind {ahead} training(s)." if ahead else "Started."
    last, shown, plot = "", 0, None
    for last in compat.follow_job(job.snapshot, every=1.0):
        samples, new_plot = samples_of(config), loss_plot_of(config)
        changed = len(samples) != shown or (new_plot and new_plot != plot)
        shown, plot = len(samples), new_plot
        if changed:
            yield last, waiting, samples, new_plot
        else:
            yield last, waiting, gr.update(), gr.update()
    job.wait(5)
    if "result" in box:
        outcome = result_markdown(box["result"])
    elif "error" not in box and job.status == "interrupted":
        outcome = "Interrupted before it started: nothing was trained."
    else:
        outcome = box.get("error") or f"{compat.ERROR_PREFIX}{job.error or job.status}"
    yield last, outcome, samples_of(config), loss_plot_of(config)


def interrupt(ctx: UiContext, slot: BakeSlot) -> str:
    """Stop the running training (it saves ``NAME-interrupted.safetensors`` and a resumable state)."""
    pending = slot.unfinished()
    if not pending:
        return "No training is going."
    running = [j for j in pending if j.snapshot()["status"] == "running"]
    job = running[0] if running else pending[0]
    common.jobs_of(ctx).interrupt(job.id)
    later = len(pending) - 1
    tail = f" {later} more queued will still run." if later else ""
    return f"Asked training `{html.escape(str(job.id))}` to stop; it saves what it has and a resumable state.{tail}"


__all__ = ["REPEATS_COLUMNS", "BakeSlot", "interrupt", "load_config", "load_preset", "loss_plot_of", "queue_markdown",
           "repeats", "result_markdown", "samples_of", "save_config", "train", "values_of"]
