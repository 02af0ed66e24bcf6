"""The Bake tab builds on the installed gradio (3.41.2 or 4.44) and its handlers train a real tiny LoRA."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lora_bakery.extension.app import build_app
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.ui import UiContext, compat
from lora_bakery.extension.ui.bake import form, handlers
from lora_bakery.extension.ui.bake.panel import eid
from lora_bakery.trainer.config import ConfigError, TrainConfig, list_presets, load_preset

IDS = {"lora_bakery_bake_intro", "lora_bakery_bake_preset", "lora_bakery_bake_train", "lora_bakery_bake_interrupt",
       "lora_bakery_bake_save", "lora_bakery_bake_samples", "lora_bakery_bake_loss_plot", "lora_bakery_bake_repeats",
       "lora_bakery_bake_network_dim", "lora_bakery_bake_dataset_train_data_dir"}


def _args(values: dict) -> tuple:
    return tuple(values[name] for name in form.NAMES)


def _small(tmp_path) -> dict:
    from lora_bakery.trainer.loop.toy import make_toy_dataset

    values = form.defaults()
    values.update({
        "dataset.train_data_dir": str(make_toy_dataset(tmp_path / "data", count=2, size=64, repeats=1)),
        "dataset.general.resolution": "64", "dataset.general.enable_bucket": "false",
        "network.dim": 4, "network.alpha": 4.0, "training.epochs": 1, "training.mixed_precision": "no",
        "optimizer.lr": 1e-3, "optimizer.scheduler": "constant", "saving.output_dir": str(tmp_path / "out"),
        "saving.output_name": "toy", "saving.save_precision": "float", "logging.tensorboard": False,
        "sampling.prompts": "sks, disc", "sampling.width": "64", "sampling.height": "64", "sampling.steps": 2,
    })
    return values


def test_the_tab_builds():
    demo = build_app(UiContext(host_name="diffusers"))
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert IDS <= ids
    assert {eid(name) for name in form.NAMES} <= ids  # one widget per flat config field
    groups = {f"lora_bakery_bake_group_{g.lower().replace(' ', '_')}" for g in form.GROUPS}
    assert groups <= ids


@pytest.mark.parametrize("name", [p["name"] for p in list_presets()])
def test_every_preset_round_trips_through_the_form(name):
    message, base, *values = handlers.load_preset(name)
    assert "Loaded preset" in message
    by_name = dict(zip(form.NAMES, values))
    assert form.to_config(by_name, base) == load_preset(name)


def test_form_reads_lists_tables_and_unset_values():
    values = form.defaults()
    values.update({"dataset.general.resolution": "512, 768", "training.max_token_length": "150",
                   "dataset.general.custom_attributes": '{"a": 1}', "dataset.general.flip_aug": "true",
                   "optimizer.args": "weight_decay=0.1\nbetas=0.9,0.99", "training.clip_skip": ""})
    config = form.to_config(values)
    assert config.dataset.general.resolution == [512, 768] and config.training.max_token_length == 150
    assert config.dataset.general.custom_attributes == {"a": 1} and config.dataset.general.flip_aug is True
    assert config.optimizer.args == ["weight_decay=0.1", "betas=0.9,0.99"] and config.training.clip_skip is None
    assert form.to_config(form.from_config(config)[0]) == config


def test_bad_values_name_the_field(tmp_path):
    values = form.defaults()
    values["network.dim"] = "abc"
    with pytest.raises(ConfigError, match="network.dim"):
        form.to_config(values)
    values["network.dim"] = -3
    message = handlers.save_config(str(tmp_path / "x.toml"), "", *_args(values))
    assert message.startswith(compat.ERROR_PREFIX) and "network.dim" in message and "at least" in message
    values["network.dim"] = 4
    values["dataset.general.resolution"] = "big"
    steps = list(handlers.train(UiContext(jobs=JobQueue()), handlers.BakeSlot(), "", *_args(values)))
    assert steps[-1][1].startswith(compat.ERROR_PREFIX) and "dataset.general.resolution" in steps[-1][1]


def test_save_and_load_config(tmp_path):
    values = _small(tmp_path)
    path = tmp_path / "bake.toml"
    message = handlers.save_config(str(path), "", *_args(values))
    assert "Saved" in message and "bakery train" in message
    assert TrainConfig.load(path) == form.to_config(values)
    message, base, *loaded = handlers.load_config(str(path))
    assert "Loaded" in message and base == ""
    assert dict(zip(form.NAMES, loaded)) == form.from_config(form.to_config(values))[0]
    missing = handlers.load_config(str(tmp_path / "nope.toml"))
    assert missing[0].startswith(compat.ERROR_PREFIX)


def test_datasets_blocks_survive_the_form(tmp_path):
    config = TrainConfig.from_dict({"dataset": {"datasets": [{"resolution": 64, "subsets": [
        {"image_dir": str(tmp_path), "num_repeats": 3}]}]}, "saving": {"output_dir": str(tmp_path)}})
    path = config.save(tmp_path / "blocks.toml")
    message, base, *values = handlers.load_config(str(path))
    assert "1 [[datasets]] block" in message and base
    assert form.to_config(dict(zip(form.NAMES, values)), base) == config


def test_repeats_table(tmp_path):
    from lora_bakery.trainer.loop.toy import make_toy_dataset

    root = make_toy_dataset(tmp_path / "data", count=3, repeats=2)
    message, table = handlers.repeats(str(root))
    assert "folder" in message and list(table.columns) == handlers.REPEATS_COLUMNS
    assert table.iloc[0]["images"] == 3 and table.iloc[0]["current_repeats"] == 2
    assert handlers.repeats(str(tmp_path / "none"))[0].startswith(compat.ERROR_PREFIX)


def test_train_runs_a_tiny_job_and_streams_results(tmp_path, tiny_sd15_path):
    import torch

    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from more; a busy machine loses a lot
    try:
        host = DiffusersHost(tiny_sd15_path)
        ctx, slot = UiContext(host_factory=lambda: host, jobs=JobQueue()), handlers.BakeSlot()
        steps = list(handlers.train(ctx, slot, "", *_args(_small(tmp_path))))
    finally:
        torch.set_num_threads(threads)
    progress, message, samples, plot = steps[-1]
    assert "done" in progress and "finished" in message, message
    assert re.search(r"loss \d\.\d{4} · avr_loss \d\.\d{4}", progress), progress  # step loss and kohya's mean
    assert (tmp_path / "out" / "toy.safetensors").is_file()
    assert samples and all(path.endswith(".png") for path, _ in samples)
    assert plot and plot.endswith("toy-loss.png")
    assert handlers.interrupt(ctx, slot) == "No training is going."
    assert "done" in handlers.queue_markdown(slot)


def test_train_lists_every_skipped_image_when_none_is_left(tmp_path, tiny_sd15_path):
    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    values = _small(tmp_path)
    values["training.skip_bad_images"] = True
    folder = Path(values["dataset.train_data_dir"]) / "1_sks"
    for image in folder.glob("*.png"):
        image.write_bytes(image.read_bytes()[:-20])  # cut downloads: the end marker is gone
    host = DiffusersHost(tiny_sd15_path)
    jobs = JobQueue()
    ctx, slot = UiContext(host_factory=lambda: host, jobs=jobs), handlers.BakeSlot()
    message = list(handlers.train(ctx, slot, "", *_args(values)))[-1][1]
    assert message.startswith(compat.ERROR_PREFIX) and "no training images left" in message
    assert "N_name" not in message, message  # 1_sks is named right: the real reasons are listed instead
    assert "000.png: the file ends early" in message and "001.png: the file ends early" in message
    assert any("000.png" in line for line in slot.jobs[-1].snapshot()["log"])  # the job log too


def test_train_without_model_says_so(tmp_path):
    steps = list(handlers.train(UiContext(jobs=JobQueue()), handlers.BakeSlot(), "", *_args(_small(tmp_path))))
    assert steps[-1][1].startswith(compat.ERROR_PREFIX) and "no model" in steps[-1][1]


def test_interrupt_stops_the_running_training_and_keeps_a_file(tmp_path, tiny_sd15_path):
    import torch

    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    values = _small(tmp_path)
    values.update({"training.epochs": 500, "sampling.prompts": ""})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        host = DiffusersHost(tiny_sd15_path)
        ctx, slot = UiContext(host_factory=lambda: host, jobs=JobQueue()), handlers.BakeSlot()
        stream = handlers.train(ctx, slot, "", *_args(values))
        for progress, *_ in stream:
            if "/500 ·" in progress:  # training, not just queued
                break
        assert "stop" in handlers.interrupt(ctx, slot)
        progress, message, _, _ = list(stream)[-1]
    finally:
        torch.set_num_threads(threads)
    assert "interrupted" in message and "Resume" in message, message
    assert (tmp_path / "out" / "toy-interrupted.safetensors").is_file()


def test_interrupting_a_queued_training_says_nothing_was_trained(tmp_path):
    import threading

    jobs, gate = JobQueue(), threading.Event()
    blocker = jobs.submit("busy", lambda job: gate.wait(30), exclusive=True)
    ctx, slot = UiContext(host_factory=lambda: object(), jobs=jobs), handlers.BakeSlot()
    try:
        stream = handlers.train(ctx, slot, "", *_args(_small(tmp_path)))
        next(stream)
        assert "stop" in handlers.interrupt(ctx, slot)
    finally:
        gate.set()
    assert "before it started" in list(stream)[-1][1]
    assert blocker.wait(5)
