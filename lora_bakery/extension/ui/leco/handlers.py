"""What the LECO tab's buttons do. Values arrive by field name (``form.NAMES`` order), work runs
on the job queue (``train_leco`` inside ``Host.exclusive()``), and progress plus the preview grids
written so far stream back from the click handler (``compat.follow_job``), on gradio 3.41 and 4.x.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from lora_bakery.extension.allowed_folders import remember
from lora_bakery.extension.ui import compat
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common
from lora_bakery.extension.ui.leco import form


def values_of(args: tuple[Any, ...]) -> dict[str, Any]:
    """Widget values (in ``form.NAMES`` order) as a name -> value dict."""
    return dict(zip(form.NAMES, args))


def previews_of(config: Any) -> list[tuple[str, str]]:
    """Gallery items ``(png, caption)`` of the grids the run has written so far, newest first."""
    folder = Path(config.saving.output_dir) / "preview"
    if not folder.is_dir():
        return []
    prefix = config.saving.output_name + "-"
    grids = sorted(p for p in folder.glob(f"{prefix}*.png") if p.stem[len(prefix):].isdigit())
    return [(str(p), f"step {int(p.stem[len(prefix):])}") for p in reversed(grids)]


def result_markdown(result: Any) -> str:
    """The run's outcome: status, files, per-save change of the extremes, the done hint, notes."""
    lines = [f"**{html.escape(result.status)}**: {result.steps}/{result.total_steps} steps in {result.seconds:.1f} s"
             + (f", last loss {result.losses[-1]:.4g}" if result.losses else "")]
    lines += [f"- `{html.escape(str(p))}`" for p in result.files]
    if result.changes:
        lines.append("Change of the extreme weights since the previous save: "
                     + ", ".join(f"step {s}: {c:.1%}" for s, c in result.changes))
    if result.done_hint:
        lines.append(f"**Done?** {html.escape(result.done_hint)}")
    if result.status == "interrupted" and result.state_dir:
        lines.append(f"Resume: put `{html.escape(str(result.state_dir))}` in *Resume from* and train again.")
    lines += [f"- {html.escape(n)}" for n in result.messages]
    return "\n\n".join(lines)


def load_preset(name: str) -> tuple:
    """Form values for preset ``name`` (then a message), in ``form.NAMES`` order, plus the extra entries."""
    from lora_bakery.trainer.leco import LecoConfig, preset

    try:
        values, extra = form.from_config(LecoConfig.from_dict(preset(name)))
    except Exception as exc:  # noqa: BLE001 - shown
        return (common.friendly(exc), gr.update(), *(gr.update() for _ in form.NAMES))
    return (f"Loaded preset **{html.escape(name)}**.", extra, *(values[n] for n in form.NAMES))


def load_config(path: str) -> tuple:
    """Form values from a LECO TOML file (the first entry in the form, the rest kept aside)."""
    from lora_bakery.trainer.leco import LecoConfig

    try:
        if not str(path or "").strip():
            raise ValueError("enter the path of a LECO .toml file")
        values, extra = form.from_config(LecoConfig.load(Path(path).expanduser()))
    except Exception as exc:  # noqa: BLE001 - shown
        return (common.friendly(exc), gr.update(), *(gr.update() for _ in form.NAMES))
    more = f" plus {len(extra)} more prompt entr{'y' if len(extra) == 1 else 'ies'} (kept, trained too)" if extra else ""
    return (f"Loaded `{html.escape(path)}`{more}.", extra, *(values[n] for n in form.NAMES))


def save_config(path: str, extra: list[dict[str, Any]] | None, *args: Any) -> str:
    """Write the form (and kept entries) as a TOML file for ``bakery leco``."""
    try:
        if not str(path or "").strip():
            raise ValueError("enter a path for the .toml file")
        config = form.to_config(values_of(args), extra or [])
        written = config.save(Path(path).expanduser())
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc)
    return f"Saved `{html.escape(str(written))}`. Run it headless with `bakery leco {html.escape(str(written))}`."


def _host(ctx: UiContext) -> Any:
    if ctx.host_factory is None:
        raise ValueError("no model is available here: load a checkpoint first")
    return ctx.host_factory()


def train(ctx: UiContext, slot: common.JobSlot, extra: list[dict[str, Any]] | None, *args: Any) -> Iterator[tuple]:
    """Run ``train_leco`` as a job; yields (progress HTML, result Markdown, preview gallery)."""
    from lora_bakery.cli.leco import host_previewer
    from lora_bakery.trainer.leco import train_leco

    try:
        config = form.to_config(values_of(args), extra or [])
        config.check_ready()
        host = _host(ctx)
        remember(config.saving.output_dir)  # the API may use the folder opened here
    except Exception as exc:  # noqa: BLE001 - shown
        yield "", common.friendly(exc), gr.update()
        return
    box: dict[str, Any] = {}

    def work(job: Any) -> None:
        try:
            with host.exclusive():
                views = host.views() if callable(getattr(host, "views", None)) else None
                previewer = host_previewer(host) if config.preview.enabled else None
                box["result"] = train_leco(config, host.model(), job, previewer, views=views)
        except Exception as exc:  # noqa: BLE001 - shown in the tab
            box["error"] = common.friendly(exc)

    job = common.jobs_of(ctx).submit("LECO", work, exclusive=True)
    slot.job = job
    last, shown = "", 0
    for last in compat.follow_job(job.snapshot, every=1.0):
        grids = previews_of(config)
        if len(grids) != shown:
            shown = len(grids)
            yield last, gr.update(), grids
        else:
            yield last, gr.update(), gr.update()
    job.wait(5)
    if "result" in box:
        yield last, result_markdown(box["result"]), previews_of(config)
    else:
        yield last, box.get("error") or f"{compat.ERROR_PREFIX}{job.error or job.status}", previews_of(config)


def interrupt(ctx: UiContext, slot: common.JobSlot) -> str:
    """Ask the running LECO job to stop; it saves ``NAME-interrupted.safetensors`` and a resumable state."""
    if slot.job is None or slot.job.is_finished:
        return "No LECO run is going."
    common.jobs_of(ctx).interrupt(slot.job.id)
    return "Asked the LECO run to stop after the current step; it saves what it has and a resumable state."


__all__ = ["interrupt", "load_config", "load_preset", "previews_of", "result_markdown", "save_config", "train", "values_of"]
