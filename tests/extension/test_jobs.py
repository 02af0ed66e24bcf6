"""JobQueue / JobContext on real threads: order, interrupt, failure messages, snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from lora_bakery.extension.host.base import HostError, NullProgress, Progress
from lora_bakery.extension.jobs import Job, JobContext, JobInterrupted, JobQueue, TqdmSink, error_message

TIMEOUT = 20


class RecordingSink(NullProgress):
    """A sink that remembers every call (stands in for shared.state / tqdm)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple] = []

    def begin(self, total: int, text: str = "") -> None:
        super().begin(total, text)
        self.calls.append(("begin", total, text))

    def step(self, n: int = 1, text: str | None = None) -> None:
        super().step(n, text)
        self.calls.append(("step", n, text))

    def preview(self, image) -> None:
        self.calls.append(("preview", image))

    def end(self) -> None:
        self.calls.append(("end",))


def test_jobs_module_imports_without_torch():
    code = "import sys; import lora_bakery.extension.jobs; assert 'torch' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


def test_context_is_a_progress_and_forwards_to_the_sink():
    sink = RecordingSink()
    ctx = JobContext(Job("x"), sink)
    assert isinstance(ctx, Progress)
    ctx.begin(3, "start")
    ctx.step(2, "two")
    ctx.preview("img")
    ctx.log("hello")
    ctx.end()
    assert sink.calls == [("begin", 3, "start"), ("step", 2, "two"), ("preview", "img"), ("end",)]
    assert (ctx.job.current, ctx.job.total, ctx.job.text) == (2, 3, "two")
    assert ctx.job.preview == "img" and ctx.job.preview_seq == 1
    assert list(ctx.job.logs) == ["hello"]


def test_run_is_synchronous_in_the_callers_thread_and_returns_result():
    q = JobQueue()
    seen = {}

    def fn(ctx, a, b=0):
        seen["thread"] = threading.current_thread()
        seen["current"] = q.current()
        ctx.begin(2)
        ctx.step()
        ctx.step()
        return a + b

    job = q.run("add", fn, 2, b=3)
    assert seen["thread"] is threading.current_thread()
    assert seen["current"] is job
    assert job.status == "done" and job.result == 5 and job.error is None
    assert job.snapshot()["progress"] == 1.0
    assert q.current() is None
    assert q.get(job.id) is job


def test_submit_runs_one_at_a_time_in_submission_order():
    q = JobQueue()
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def fn(ctx, name):
        with lock:
            events.append(("start", name))
        time.sleep(0.05)
        with lock:
            events.append(("end", name))
        return name

    jobs = [q.submit(f"j{i}", fn, f"j{i}") for i in range(4)]
    for job in jobs:
        assert job.wait(TIMEOUT)
    assert [j.status for j in jobs] == ["done"] * 4
    expected = [e for i in range(4) for e in (("start", f"j{i}"), ("end", f"j{i}"))]
    assert events == expected
    # started strictly after the previous one finished
    for a, b in zip(jobs, jobs[1:]):
        assert b.started >= a.finished


def test_non_exclusive_job_does_not_wait_behind_exclusive_one():
    q = JobQueue()
    release = threading.Event()
    blocker = q.submit("blocker", lambda ctx: release.wait(TIMEOUT))
    light = q.submit("scan", lambda ctx: "scanned", exclusive=False)
    assert light.wait(TIMEOUT) and light.result == "scanned"
    assert blocker.status == "running"
    release.set()
    assert blocker.wait(TIMEOUT) and blocker.status == "done"


def test_interrupt_mid_job_keeps_what_was_done():
    q = JobQueue()
    started = threading.Event()
    saved: list[int] = []

    def fn(ctx):
        ctx.begin(1000)
        for i in range(1000):
            if ctx.interrupted:
                saved.append(i)  # "save what we have"
                return {"saved_at": i}
            started.set()
            ctx.step()
            time.sleep(0.005)
        return {"saved_at": None}

    job = q.submit("bake", fn)
    assert started.wait(TIMEOUT)
    assert q.current() is job
    assert q.interrupt() is True  # the running one
    assert job.wait(TIMEOUT)
    assert job.status == "interrupted"
    assert job.result["saved_at"] == saved[0] and 0 < saved[0] < 1000
    assert job.snapshot()["interrupt_requested"] is True
    assert q.interrupt(job.id) is False  # already finished


def test_interrupt_reaches_the_sink_only_while_the_job_drives_it():
    sink = RecordingSink()
    sink.interrupt_calls = 0

    def interrupt():
        sink.interrupt_calls += 1

    sink.interrupt = interrupt
    ctx = JobContext(Job("x"), sink)
    ctx.request_interrupt()  # not begun: another job may own shared.state
    assert sink.interrupt_calls == 0 and ctx.interrupted
    ctx2 = JobContext(Job("y"), sink)
    ctx2.begin(5)
    ctx2.request_interrupt()
    assert sink.interrupt_calls == 1


def test_interrupt_from_the_sink_stops_the_context():
    sink = NullProgress()
    ctx = JobContext(Job("x"), sink)
    assert not ctx.interrupted
    sink.interrupt()  # e.g. A1111's Interrupt button
    assert ctx.interrupted and ctx.job.interrupt_requested
    with pytest.raises(JobInterrupted):
        ctx.check_interrupted()


def test_interrupted_while_queued_never_starts():
    q = JobQueue()
    release = threading.Event()
    ran = []
    first = q.submit("first", lambda ctx: release.wait(TIMEOUT))
    second = q.submit("second", lambda ctx: ran.append(1))
    assert second.status == "queued"
    assert q.interrupt(second.id)
    release.set()
    assert first.wait(TIMEOUT) and second.wait(TIMEOUT)
    assert second.status == "interrupted" and ran == []


def test_job_interrupted_exception_and_keyboard_interrupt_mean_interrupted():
    q = JobQueue()

    def raise_interrupted(ctx):
        raise JobInterrupted("stop")

    def raise_ctrl_c(ctx):
        raise KeyboardInterrupt

    assert q.run("a", raise_interrupted).status == "interrupted"
    job = q.run("b", raise_ctrl_c)
    assert job.status == "interrupted" and job.error is None


def test_failure_becomes_one_readable_line_and_traceback_goes_to_log(caplog):
    q = JobQueue()

    def bad(ctx):
        raise KeyError("lora_unet_missing")

    with caplog.at_level("ERROR", logger="lora_bakery.jobs"):
        job = q.submit("bad", bad)
        assert job.wait(TIMEOUT)
    assert job.status == "failed"
    assert job.error == "KeyError: 'lora_unet_missing' (details in the console)"
    assert "\n" not in job.error and "Traceback" not in job.error
    assert any(r.exc_info for r in caplog.records)  # the traceback is in the log
    # the queue keeps working after a failure
    assert q.run("ok", lambda ctx: 1).status == "done"


def test_error_message_mapping():
    class OutOfMemoryError(RuntimeError):  # same name as torch.cuda.OutOfMemoryError
        pass

    oom = error_message(OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore"))
    assert oom.startswith("Out of memory: CUDA out of memory. Tried to allocate 2.00 GiB.")
    assert "smaller batch" in oom and "\n" not in oom
    assert error_message(RuntimeError("CUDA error: out of memory")).startswith("Out of memory")
    assert error_message(ValueError("learning_rate must be > 0\nline2")) == "learning_rate must be > 0"
    assert error_message(HostError("No checkpoint is loaded.")) == "No checkpoint is loaded."
    assert error_message(ZeroDivisionError("division by zero")) == "ZeroDivisionError: division by zero (details in the console)"
    assert error_message(RuntimeError()) == "RuntimeError (details in the console)"


def test_snapshot_is_json_round_trippable():
    q = JobQueue()

    class Custom:
        def __str__(self):
            return "custom-result"

    def fn(ctx):
        ctx.begin(4, "baking")
        ctx.step(1, "epoch 1")
        ctx.preview(object())
        ctx.log("saved epoch 1")
        return {"files": ["/out/a.safetensors"], "obj": Custom(), "n": 1.5}

    job = q.run("bake", fn)
    snap = job.snapshot()
    again = json.loads(json.dumps(snap))
    assert again == snap
    assert snap["status"] == "done" and snap["current"] == 1 and snap["total"] == 4
    assert snap["progress"] == 0.25 and snap["text"] == "epoch 1"
    assert snap["result"] == {"files": ["/out/a.safetensors"], "obj": "custom-result", "n": 1.5}
    assert snap["preview_seq"] == 1 and snap["log"] == ["saved epoch 1"]
    assert snap["elapsed"] >= 0 and snap["finished"] >= snap["started"]


def test_list_keeps_only_recent_finished_jobs():
    q = JobQueue(keep=3)
    ids = [q.run(f"j{i}", lambda ctx: None).id for i in range(6)]
    assert [j.id for j in q.list()] == ids[-3:]
    assert q.get(ids[0]) is None


def test_job_id_can_be_given_and_sink_factory_is_used_per_job():
    sinks: list[RecordingSink] = []

    def factory():
        sinks.append(RecordingSink())
        return sinks[-1]

    q = JobQueue(sink_factory=factory)

    def fn(ctx):
        ctx.begin(1)
        ctx.step()

    job = q.run("x", fn, job_id="task(abc)")
    assert job.id == "task(abc)" and q.get("task(abc)") is job
    assert len(sinks) == 1 and sinks[0].calls[0] == ("begin", 1, "") and sinks[0].calls[-1] == ("end",)


def test_tqdm_sink_progress_and_interrupt(capsys):
    import io

    buf = io.StringIO()
    sink = TqdmSink(file=buf)
    q = JobQueue(sink_factory=lambda: sink)

    def fn(ctx):
        ctx.begin(3, "steps")
        ctx.step(1, "loss 0.1")
        sink._on_sigint(2, None)  # what the first Ctrl-C does
        ctx.step(1)
        return ctx.interrupted

    job = q.run("cli", fn)
    assert job.result is True and job.status == "interrupted"
    assert "steps" in buf.getvalue()
    assert sink.bar is None  # closed at end
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C aborts
        sink._on_sigint(2, None)


def test_tqdm_sink_real_ctrl_c_in_main_thread():
    import io
    import os
    import signal

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals can only be handled in the main thread")
    before = signal.getsignal(signal.SIGINT)
    sink = TqdmSink(file=io.StringIO())
    q = JobQueue(sink_factory=lambda: sink)

    def fn(ctx):
        ctx.begin(1000)
        for i in range(1000):
            if ctx.interrupted:
                return i
            if i == 3:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C
                time.sleep(0.05)
            ctx.step()
        return None

    job = q.run("cli", fn)
    assert job.status == "interrupted" and job.result is not None and job.result >= 3
    assert signal.getsignal(signal.SIGINT) is before  # handler removed at end
