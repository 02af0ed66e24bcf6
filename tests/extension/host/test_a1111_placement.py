"""Bakes under A1111 --medvram / --medvram-sdxl / --lowvram on the faithful fakes.

The fake ``modules/lowvram.py`` installs A1111's hooks; the "GPU" is ``cpu:1`` (see
``tests/fakes/fake_gpu.py``: every move there copies, and a ledger records where each storage is),
or CUDA when this machine has one. Every parameter and buffer of the host model is recorded before,
during (each optimizer step) and after the bake: Parameter object, storage pointer, dtype, device,
bytes; plus every forward pre-hook, the VAE's encode/decode wrappers and ``lowvram.module_in_gpu``.
"""

from __future__ import annotations

import hashlib

import pytest
import torch

from lora_bakery.extension.host.a1111 import A1111Host
from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.loop.run import Run
from lora_bakery.trainer.loop.toy import make_toy_dataset
from lora_bakery.trainer.tiny import tiny_checkpoint
from lora_bakery.trainer.train import TrainCallbacks, TrainError
from tests.fakes.fake_gpu import gpu_device, ledger
from tests.fakes.webui import installed_fake_webui
from tests.trainer.conftest import one_thread  # noqa: F401 - the tiny runs' one-thread fixture

MODES = {"medvram": dict(medvram=True), "lowvram": dict(lowvram=True), "medvram_sdxl": dict(medvram_sdxl=True)}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def fake_webui():
    """The fake webui, with the device ledger on from before the model is loaded."""
    with installed_fake_webui() as webui, ledger() as led:
        webui.ledger = led
        yield webui


def _load(webui, arch: str, mode: str):
    """A model as A1111 leaves it after loading with the flag and one txt2img (the VAE on the GPU)."""
    from lora_bakery.extension.host.base import GenerationRequest

    model = webui.load(tiny_checkpoint("sdxl" if arch == "sdxl" else "sd15"), arch)
    for key, value in MODES[mode].items():
        setattr(webui.shared.cmd_opts, key, value)
    webui.devices.device = gpu_device()
    webui.lowvram.apply(model)
    assert model.lowvram
    A1111Host().generate([GenerationRequest("warm up", width=64, height=64, steps=1)])
    assert webui.lowvram.module_in_gpu is model.first_stage_model
    return model


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def _record(model, where) -> dict:
    """Every parameter and buffer: (object id, storage pointer, dtype, device, bytes)."""
    rows = {}
    for mname, module in model.named_modules():
        for kind, table in (("p", module._parameters), ("b", module._buffers)):
            for name, t in table.items():
                if t is not None:
                    rows[f"{kind}:{mname}.{name}"] = (id(t), t.data_ptr(), t.dtype, where(t), _digest(t))
    return rows


def _hooks(model, lowvram) -> dict:
    hooks = {name: [(k, h) for k, h in m._forward_pre_hooks.items()] for name, m in model.named_modules()}
    vae = model.first_stage_model
    return {"hooks": hooks, "encode": vae.__dict__.get("encode"), "decode": vae.__dict__.get("decode"),
            "module_in_gpu": lowvram.module_in_gpu}


def _config(data, out, general=None, network=None, **training) -> TrainConfig:
    general = {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 64, **(general or {})}
    return TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data), "general": general},
        "network": {"dim": 4, "alpha": 4, **(network or {})},
        "optimizer": {"lr": 3e-3, "scheduler": "constant"},
        "training": {"epochs": 1, "mixed_precision": "no", "seed": 3, **training},
        "saving": {"output_dir": str(out), "output_name": "mv", "save_precision": "float"},
    })


def _host_where(model, where) -> dict[str, set[str]]:
    """Where the host's big modules are: {"vae": {"cpu"}, ...}."""
    text = model.conditioner if hasattr(model, "conditioner") else model.cond_stage_model
    unet = model.model.diffusion_model
    blocks = [unet.time_embed, unet.input_blocks, unet.middle_block, unet.output_blocks]
    rest = [p for n, p in unet.named_parameters() if n.split(".")[0] not in ("time_embed", "input_blocks", "middle_block", "output_blocks")]
    found = {"vae": {where(p) for p in model.first_stage_model.parameters()},
             "unet": {where(p) for b in blocks for p in b.parameters()},
             "text": {where(p) for p in text.parameters()}}
    return {**found, "unet_rest": {where(p) for p in rest}}


class Watch(TrainCallbacks):
    """Records, at each optimizer step, where the views and the host's modules are; may fail on cue."""

    def __init__(self, views, model, where, lowvram, fail_at: int | None = None, error: Exception | None = None):
        self.views, self.model, self.where, self.lowvram = views, model, where, lowvram
        self.fail_at, self.error = fail_at, error
        self.during: list[dict] = []
        # the host's U-Net and text model were on the CPU on entry: they keep that very storage
        self.entry = {n: p.data_ptr() for n, p in model.named_parameters() if not n.startswith("first_stage_model.")}

    def on_step_end(self, info) -> None:
        v = self.views
        self.during.append({
            "unet": {self.where(p) for p in v.unet.parameters()},
            "vae": {self.where(p) for p in v.vae.parameters()},
            "text": {self.where(p) for te in v.text_encoders for p in te.parameters()},
            "host": _host_where(self.model, self.where),
            "module_in_gpu": self.lowvram.module_in_gpu,
            "host_storage_kept": all(p.data_ptr() == self.entry[n] for n, p in self.model.named_parameters() if n in self.entry),
        })
        if self.fail_at is not None and info.step >= self.fail_at:
            raise self.error


def _bake(webui, model, tmp_path, *, callbacks_kw=None, sampler=False, interrupt_at=None, general=None, te=False,
          **training):
    from lora_bakery.cli.train import host_sampler
    from lora_bakery.extension.host.base import NullProgress
    from lora_bakery.trainer.models import build_views

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    config = _config(data, tmp_path / "out", general, {"train_text_encoder": te}, **training)
    if sampler:
        config.sampling.prompts = ["sks --w 64 --h 64 --s 1"]
        config.sampling.every_n_epochs = 1
    host = A1111Host()
    led = webui.ledger
    before, hooks = _record(model, led.where), _hooks(model, webui.lowvram)
    with host.exclusive():
        parts = host.model()
        assert parts.placement is not None and parts.placement.device == gpu_device()
        views = build_views(parts.parameters, parts.architecture)
        watch = Watch(views, model, led.where, webui.lowvram, **(callbacks_kw or {}))
        progress = NullProgress()
        if interrupt_at is not None:
            original = watch.on_step_end

            def on_step(info):
                original(info)
                if info.step >= interrupt_at:
                    progress.interrupt()
            watch.on_step_end = on_step
        run = Run(config, parts, progress, host_sampler(host) if sampler else None, watch, views)
        result = error = None
        try:
            result = run()
        except TrainError as exc:
            result, error = exc.result, exc
        except Exception as exc:  # noqa: BLE001 - the test checks the host afterwards
            error = exc
    after, hooks_after = _record(model, led.where), _hooks(model, webui.lowvram)
    return run, result, error, watch, (before, after), (hooks, hooks_after)


def _assert_restored(records, hooks):
    before, after = records
    assert after.keys() == before.keys()
    changed = [k for k in before if after[k] != before[k]]
    # the module that was on the GPU on entry (the VAE after a txt2img) went to the CPU and came back:
    # same object, dtype, device and bytes; only its allocation is new
    moved = [k for k in changed if after[k][0] != before[k][0] or after[k][2:] != before[k][2:]]
    assert not moved, moved[:5]
    assert all(k.split(":")[1].startswith("first_stage_model.") for k in changed), changed[:5]
    assert hooks[1]["hooks"] == hooks[0]["hooks"]
    assert hooks[1]["encode"] is hooks[0]["encode"] and hooks[1]["decode"] is hooks[0]["decode"]
    assert hooks[1]["module_in_gpu"] is hooks[0]["module_in_gpu"]


@pytest.mark.parametrize("arch,mode", [("sd1", "medvram"), ("sd1", "lowvram"), ("sdxl", "medvram_sdxl")])
def test_bake_under_lowvram_places_views_and_restores_the_host_exactly(fake_webui, tmp_path, arch, mode):
    model = _load(fake_webui, arch, mode)
    run, result, error, watch, records, hooks = _bake(fake_webui, model, tmp_path)
    assert error is None and result.status == "finished" and result.final.is_file()
    assert run.placement.events == [("to_device", "vae"), ("offload", "vae"), ("to_device", "text_encoders"),
                                    ("offload", "text_encoders"), ("to_device", "unet"), ("offload", "unet")]
    assert watch.during, "no step was recorded"
    for state in watch.during:
        assert state["unet"] == {"gpu"} and state["vae"] == {"cpu"} and state["text"] == {"cpu"}
        # --lowvram keeps the U-Net's blocks on the CPU and the rest of it (out, label_emb) on the GPU
        rest = {"gpu"} if mode == "lowvram" else {"cpu"}
        assert state["host"] == {"vae": {"cpu"}, "unet": {"cpu"}, "text": {"cpu"}, "unet_rest": rest}
        assert state["module_in_gpu"] is None and state["host_storage_kept"]
    notes = " ".join(result.messages)
    assert "--lowvram" in notes if mode == "lowvram" else "--medvram" in notes
    assert "text-encoder outputs cached for 1 distinct captions" in notes
    assert "memory: this bake needs ≈ " in notes
    _assert_restored(records, hooks)
    assert run.views.unet.conv_in.weight.data_ptr() == run.parts.parameters["model.diffusion_model.input_blocks.0.0.weight"].data_ptr()


@pytest.mark.parametrize("te,general,why", [(True, {}, "the text encoder is trained (network.train_text_encoder)"),
                                             (False, {"shuffle_caption": True}, "shuffle_caption in 1_sks")])
def test_text_encoder_stays_on_the_gpu_when_it_trains_or_captions_vary(fake_webui, tmp_path, te, general, why):
    model = _load(fake_webui, "sd1", "medvram")
    run, result, error, watch, records, hooks = _bake(fake_webui, model, tmp_path, general=general, te=te)
    assert error is None and result.status == "finished"
    assert run.placement.events == [("to_device", "vae"), ("offload", "vae"), ("to_device", "text_encoders"),
                                    ("to_device", "unet"), ("offload", "unet"), ("offload", "text_encoders")]
    assert all(state["text"] == {"gpu"} and state["vae"] == {"cpu"} and state["unet"] == {"gpu"} for state in watch.during)
    assert any("text encoder kept on the GPU" in m and why in m for m in result.messages), result.messages
    _assert_restored(records, hooks)


@pytest.mark.parametrize("how", ["interrupt", "exception", "oom"])
def test_host_restored_after_interrupt_exception_and_oom(fake_webui, tmp_path, how):
    model = _load(fake_webui, "sd1", "medvram")
    kw: dict = {"interrupt_at": 1} if how == "interrupt" else {"callbacks_kw": {"fail_at": 1, "error": (
        ValueError("boom") if how == "exception" else RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))}}
    run, result, error, watch, records, hooks = _bake(fake_webui, model, tmp_path, **kw)
    if how == "interrupt":
        assert error is None and result.status == "interrupted"
    elif how == "exception":
        assert isinstance(error, ValueError)
    else:
        assert isinstance(error, TrainError) and error.reason == "oom"
        text = str(error)  # what took the memory and the savers, by their config keys (the Bake form's labels)
        assert "Out of memory while training: the estimate was ≈" in text and "training.gradient_checkpointing on" in text
        assert "training.fp8_base on" in text and "CUDA out of memory" in text
    assert watch.during and run.placement.placed == set()
    _assert_restored(records, hooks)


def test_sample_images_during_the_bake_lend_the_model_back(fake_webui, tmp_path):
    model = _load(fake_webui, "sd1", "medvram")
    calls = len(fake_webui.processing.calls)
    run, result, error, watch, records, hooks = _bake(fake_webui, model, tmp_path, sampler=True, epochs=2)
    assert error is None and result.status == "finished" and len(result.samples) == 2
    assert len(fake_webui.processing.calls) == calls + 2
    # between the two epochs the webui rendered (its hooks moved its modules); training went on placed
    assert [e for e in run.placement.events if e[1] == "unet"] == [("to_device", "unet"), ("offload", "unet")] * 3
    for state in watch.during:
        assert state["unet"] == {"gpu"} and state["host"]["unet"] == {"cpu"} and state["module_in_gpu"] is None
        assert state["host_storage_kept"]
    _assert_restored(records, hooks)


def test_leco_under_medvram_places_and_restores(fake_webui, tmp_path):
    from lora_bakery.trainer.leco import train_leco
    from tests.trainer.leco.helpers import config as leco_config

    model = _load(fake_webui, "sd1", "medvram")
    led = fake_webui.ledger
    before, hooks = _record(model, led.where), _hooks(model, fake_webui.lowvram)
    host = A1111Host()
    with host.exclusive():
        parts = host.model()
        result = train_leco(leco_config(tmp_path / "out", training={"steps": 2}), parts)
    assert result.steps == 2 and result.final.is_file()
    assert any("--medvram" in m for m in result.messages)
    _assert_restored((before, _record(model, led.where)), (hooks, _hooks(model, fake_webui.lowvram)))
