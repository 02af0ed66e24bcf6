"""The LECO tab builds on the installed gradio (3.41.2 or 4.44) and its handlers train a real slider."""

from __future__ import annotations

import pytest

from lora_bakery.extension.app import build_app
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.ui import UiContext, compat
from lora_bakery.extension.ui.dataset import common
from lora_bakery.extension.ui.leco import form, handlers
from lora_bakery.trainer.config import ConfigError
from lora_bakery.trainer.leco import LecoConfig

IDS = {"lora_bakery_leco_intro", "lora_bakery_leco_target", "lora_bakery_leco_positive", "lora_bakery_leco_negative",
       "lora_bakery_leco_train", "lora_bakery_leco_interrupt", "lora_bakery_leco_grids", "lora_bakery_leco_preset"}


def _args(values: dict) -> tuple:
    return tuple(values[name] for name in form.NAMES)


def _small(tmp_path) -> dict:
    values = form.defaults()
    values.update(target="a dog", positive="a dog, red", negative="a dog, blue", neutral="a dog", resolution=64,
                  modules="xattn", steps=4, lr=0.01, precision="fp32", max_denoising_steps=4, save_every=2,
                  output_dir=str(tmp_path / "out"), multipliers="-1, 1", preview_width=64, preview_height=64,
                  preview_steps=2, anchors="a cat")
    return values


def test_the_tab_builds():
    demo = build_app(UiContext(host_name="diffusers"))
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert IDS <= ids


def test_form_round_trip_keeps_extra_entries(tmp_path):
    config = LecoConfig.from_dict({
        "prompts": [{"target": "skirt", "positive": "long_skirt", "unconditional": "microskirt"},
                    {"target": "dress", "positive": "long dress", "unconditional": "short dress"}],
        "attributes": ["1girl", "1boy"], "anchors": [{"prompt": "face"}],
        "network": {"conv_dim": 4}, "saving": {"output_dir": str(tmp_path)},
    })
    values, extra = form.from_config(config)
    assert values["attributes"] == "1girl, 1boy" and values["multipliers"] == "-2, -1, -0.5, 0, 0.5, 1, 2"
    assert len(extra) == 1
    assert form.to_config(values, extra) == config


def test_bad_form_values_name_the_field(tmp_path):
    values = _small(tmp_path)
    values["negative"] = values["positive"]
    with pytest.raises(ConfigError, match="nothing to learn"):
        form.to_config(values)
    assert handlers.save_config(str(tmp_path / "x.toml"), [], *_args(values)).startswith(compat.ERROR_PREFIX)


def test_save_and_load_config(tmp_path):
    values = _small(tmp_path)
    path = tmp_path / "leco.toml"
    assert "Saved" in handlers.save_config(str(path), [], *_args(values))
    message, extra, *loaded = handlers.load_config(str(path))
    assert "Loaded" in message and extra == []
    assert dict(zip(form.NAMES, loaded))["positive"] == "a dog, red"
    message, extra, *preset = handlers.load_preset("age (sliders)")
    assert dict(zip(form.NAMES, preset))["attributes"] == "male, female"


def test_train_streams_progress_and_grids(tmp_path):
    import torch

    from tests.trainer.leco.helpers import tiny_host

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny model gains nothing from more; a busy machine loses a lot
    try:
        _train_and_check(tmp_path, tiny_host())
    finally:
        torch.set_num_threads(threads)


def _train_and_check(tmp_path, host):
    ctx, slot = UiContext(host_factory=lambda: host, jobs=JobQueue()), common.JobSlot()
    steps = list(handlers.train(ctx, slot, [], *_args(_small(tmp_path))))
    progress, message, grids = steps[-1]
    assert "done" in progress and "finished" in message and "4/4 steps" in message
    assert [caption for _, caption in grids] == ["step 4", "step 2"]
    assert (tmp_path / "out" / "leco_slider.safetensors").is_file()
    assert handlers.interrupt(ctx, slot) == "No LECO run is going."


def test_train_without_model_says_so(tmp_path):
    steps = list(handlers.train(UiContext(jobs=JobQueue()), common.JobSlot(), [], *_args(_small(tmp_path))))
    assert steps[-1][1].startswith(compat.ERROR_PREFIX) and "no model" in steps[-1][1]
