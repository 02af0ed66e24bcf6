"""gradio 3/4 helpers, checked against the installed gradio and a real JobQueue."""

from __future__ import annotations

import inspect
import threading

import gradio as gr

from lora_bakery.extension.host.base import HostError
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.ui import compat


def test_queue_kwargs_fit_this_gradio():
    kwargs = compat.queue_kwargs(3)
    params = inspect.signature(gr.Blocks.queue).parameters
    assert kwargs and set(kwargs) <= set(params)
    assert list(kwargs.values()) == [3]
    if compat.GRADIO_MAJOR >= 4:
        assert kwargs == {"default_concurrency_limit": 3}
    else:
        assert kwargs == {"concurrency_count": 3}


def test_kwargs_for_drops_unknown_arguments():
    kept = compat.kwargs_for(gr.Textbox, label="x", no_such_option=1)
    assert kept == {"label": "x"}


def test_guarded_turns_exceptions_into_messages():
    @compat.guarded()
    def fails():
        raise HostError("Load a checkpoint first.")

    @compat.guarded(outputs=3)
    def fails_many():
        raise KeyError("boom")

    assert fails() == compat.ERROR_PREFIX + "Load a checkpoint first."
    out = fails_many()
    assert len(out) == 3 and out[0].startswith(compat.ERROR_PREFIX) and "KeyError" in out[0]
    assert "Traceback" not in out[0]


def test_progress_html_from_real_job_snapshots():
    jobs = JobQueue()

    def work(ctx):
        ctx.begin(4, "warming up")
        ctx.step(1, "step <1>")

    job = jobs.submit("Bake demo", work)
    assert job.wait(10)
    html = compat.progress_html(job.snapshot())
    assert "Bake demo" in html and "done" in html and "1/4" in html
    assert "step &lt;1&gt;" in html  # text is escaped
    assert "width:25.0%" in html

    def broken(ctx):
        raise RuntimeError("disk full")

    failed = jobs.submit("Broken", broken)
    assert failed.wait(10)
    html = compat.progress_html(failed.snapshot())
    assert "failed" in html and "disk full" in html
    assert "No job running" in compat.progress_html(None)


def test_job_progress_polls_with_every():
    with gr.Blocks(analytics_enabled=False) as demo:
        comp = compat.job_progress(
            lambda: {"status": "running", "current": 1, "total": 2}, every=0.5, elem_id="p"
        )
    assert isinstance(comp, gr.HTML) and comp.elem_id == "p"
    assert "1/2" in comp.value
    assert demo.blocks  # built without gradio errors in this version


def test_offline_theme_uses_no_web_fonts():
    theme = compat.offline_theme()
    css = theme._get_theme_css() if hasattr(theme, "_get_theme_css") else ""
    assert "fonts.googleapis" not in css
    assert not getattr(theme, "_stylesheets", [])


def test_follow_job_ends_when_the_job_ends():
    jobs = JobQueue()
    gate = threading.Event()

    def work(ctx):
        ctx.begin(2, "start")
        gate.wait(10)
        ctx.step(2, "finished")

    job = jobs.submit("Follow", work)
    frames = compat.follow_job(job.snapshot, every=0.01)
    first = next(frames)
    assert "Follow" in first and ("queued" in first or "running" in first)
    gate.set()
    rest = list(frames)  # must terminate on its own
    assert "done" in rest[-1] and "2/2" in rest[-1]


def test_follow_job_stops_on_timeout_and_on_snapshot_errors():
    frames = list(
        compat.follow_job(lambda: {"status": "running", "current": 0, "total": 5}, every=0.01, timeout=0.05)
    )
    assert 1 <= len(frames) < 50 and all("running" in f for f in frames)

    def broken():
        raise HostError("job record lost")

    (only,) = list(compat.follow_job(broken))
    assert "Error: job record lost" in only
