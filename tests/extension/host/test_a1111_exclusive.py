"""A1111Host.exclusive()/queue lock/progress over the fake webui: no deadlock, everything restored."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from safetensors.torch import save_file

from lora_bakery.extension.host.a1111 import A1111Host, A1111Progress
from lora_bakery.extension.host.base import Progress
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.webui import installed_fake_webui


@pytest.fixture
def fake_webui():
    with installed_fake_webui() as webui:
        yield webui

TIMEOUT = 15


def _run_in_thread(fn, *args):
    """Run fn in a daemon thread; a deadlock shows up as a thread still alive after TIMEOUT."""
    out: dict = {}

    def target():
        try:
            out["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001
            out["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "deadlock: the call did not return"
    if "error" in out:
        raise out["error"]
    return out.get("result")


def _user_lora(folder, name="user_style"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(1, 4)}, str(path), metadata={"ss_output_name": name})
    return path


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_exclusive_restores_requires_grad_and_releases_lock_on_error(fake_webui):
    model = fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    assert any(flags.values()) and not all(flags.values())  # UNet True, TE/VAE False, as live
    host = A1111Host()
    lock = fake_webui.call_queue.queue_lock
    with pytest.raises(RuntimeError, match="boom"):
        with host.exclusive():
            assert lock.locked()
            assert fake_webui.state.begun == ["LoRA Bakery"]  # we took the lock, so we own state
            for p in model.parameters():
                p.requires_grad_(False)  # a trainer freezes the base...
            next(iter(model.parameters())).requires_grad_(True)
            raise RuntimeError("boom")
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    assert not lock.locked()
    assert fake_webui.state.ended == 1 and fake_webui.state.job_count == 0
    with host.exclusive():  # usable again
        pass


def test_exclusive_inside_a_wrapped_ui_handler_does_not_deadlock(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    host = A1111Host()
    lock = fake_webui.call_queue.queue_lock
    seen = {}

    def handler(id_task, text):
        seen["locked"] = lock.locked()
        with host.exclusive():
            with host.exclusive():  # nested use (a bake that renders previews) is fine too
                seen["inner"] = True
        seen["begun"] = list(fake_webui.state.begun)
        return ["done " + text, ""]

    wrapped = host.gpu_call(handler, extra_outputs=[None])
    result = _run_in_thread(wrapped, "task(abc)", "x")
    assert result[0] == "done x" and "Time taken" in result[1]
    assert seen == {"locked": True, "inner": True, "begun": ["task(abc)"]}  # state begun once, by the wrapper
    assert not lock.locked()
    assert fake_webui.progress.finished_tasks == ["task(abc)"]


def test_handler_error_in_gpu_call_becomes_error_html_and_frees_the_lock(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    host = A1111Host()

    def handler(id_task):
        with host.exclusive():
            raise ValueError("bad rank")

    result = _run_in_thread(host.gpu_call(handler, extra_outputs=[None]), "task(1)")
    assert result[0] is None and "bad rank" in result[1]
    assert not fake_webui.call_queue.queue_lock.locked()
    with host.exclusive():  # no thread-local marker left behind
        pass


def test_api_thread_waits_for_the_ui_job_holding_the_lock(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    host = A1111Host()
    order: list[str] = []
    ui_inside = threading.Event()
    release_ui = threading.Event()

    def ui_handler(id_task):
        with host.exclusive():
            order.append("ui-start")
            ui_inside.set()
            release_ui.wait(TIMEOUT)
            order.append("ui-end")
        return [""]

    def api_call():
        with host.exclusive():
            order.append("api")

    ui = threading.Thread(target=host.gpu_call(ui_handler), args=("task(ui)",), daemon=True)
    ui.start()
    assert ui_inside.wait(TIMEOUT)
    api = threading.Thread(target=api_call, daemon=True)
    api.start()
    time.sleep(0.2)
    assert order == ["ui-start"]  # the API call is waiting for the queue lock
    release_ui.set()
    ui.join(TIMEOUT)
    api.join(TIMEOUT)
    assert not ui.is_alive() and not api.is_alive()
    assert order == ["ui-start", "ui-end", "api"]


def test_exclusive_clears_merged_loras_of_a_previous_generation(fake_webui, tmp_path):
    model = fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    clean = _snapshot(model)
    fake_webui.networks.lora_dir = str(tmp_path / "Lora")
    _user_lora(tmp_path / "Lora")
    p = fake_webui.processing.StableDiffusionProcessingTxt2Img(sd_model=model, prompt="cat <lora:user_style:0.8>", steps=2)
    fake_webui.processing.process_images(p)  # the user's own txt2img leaves the LoRA merged in
    assert fake_webui.processing.calls[-1]["missing_loras"] == []
    assert fake_webui.networks.loaded_networks
    assert not torch.equal(model.state_dict()["model.diffusion_model.input_blocks.0.0.weight"], clean["model.diffusion_model.input_blocks.0.0.weight"])

    with A1111Host().exclusive():
        assert fake_webui.networks.loaded_networks == []
        now = model.state_dict()
        assert all(torch.equal(now[k], v) for k, v in clean.items())  # bitwise the checkpoint


def test_exclusive_can_undo_optimizations_like_ti_training(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    with A1111Host().exclusive():
        pass
    assert fake_webui.sd_hijack.calls == []
    with pytest.raises(KeyError):
        with A1111Host().exclusive(undo_optimizations=True):
            assert fake_webui.sd_hijack.calls == ["undo"]
            raise KeyError("x")
    assert fake_webui.sd_hijack.calls == ["undo", "apply"]


def test_a1111_progress_drives_shared_state(fake_webui):
    sink = A1111Progress()
    assert isinstance(sink, Progress)
    state = fake_webui.state
    state.begin(job="task(x)")
    sink.begin(10, "Baking")
    assert (state.job_count, state.job_no, state.textinfo) == (10, 0, "Baking")
    sink.step(3, "epoch 1, loss 0.12")
    assert state.job_no == 3 and state.textinfo == "epoch 1, loss 0.12"
    image = object()
    sink.preview(image)
    assert state.current_image is image and state.id_live_preview == 1
    assert not sink.interrupted
    sink.interrupt()
    assert state.interrupted and sink.interrupted
    sink.end()
    assert state.job_no == 10


def test_interrupt_button_stops_a_job_run_in_a_ui_handler(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    host = A1111Host()
    jobs = JobQueue(sink_factory=A1111Progress)
    started = threading.Event()

    def bake(ctx):
        with host.exclusive():
            ctx.begin(10_000, "Baking")
            for step in range(10_000):
                if ctx.interrupted:
                    return {"stopped_at": step}
                started.set()
                ctx.step(1)
                time.sleep(0.002)
        return {"stopped_at": None}

    def handler(id_task):
        job = jobs.run("Bake", bake, job_id=id_task)
        return [job.status, str(job.result)]

    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("res", host.gpu_call(handler)("task(b)")), daemon=True)
    thread.start()
    assert started.wait(TIMEOUT)
    assert fake_webui.state.job_count == 10_000 and fake_webui.state.textinfo == "Baking"
    fake_webui.state.interrupt()  # what A1111's Interrupt button does
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    status, result = out["res"][0], out["res"][1]
    assert status == "interrupted" and "stopped_at" in result and "None" not in result
    assert jobs.get("task(b)").status == "interrupted"
    assert fake_webui.state.interrupted is False  # the webui wrapper resets it afterwards


def test_api_interrupt_reaches_shared_state_of_a_running_job(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    host = A1111Host()
    jobs = JobQueue(sink_factory=A1111Progress)
    started = threading.Event()
    seen = {}

    def bake(ctx):
        with host.exclusive():
            ctx.begin(10_000)
            while not ctx.interrupted:
                started.set()
                time.sleep(0.002)
            seen["state_interrupted"] = fake_webui.state.interrupted  # nested process_images would stop too

    job = jobs.submit("Bake", bake)
    assert started.wait(TIMEOUT)
    assert jobs.interrupt(job.id)
    assert job.wait(TIMEOUT) and job.status == "interrupted"
    assert seen["state_interrupted"] is True
    assert not fake_webui.call_queue.queue_lock.locked()
