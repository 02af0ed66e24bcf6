"""The loop's edges: interrupt → loadable files and an exact resume, NaN → the last good file,
existing files refused, bidirectional + anchor losses, fp16 refused at run time too."""

from __future__ import annotations

import pytest
import torch

from lora_bakery.extension.host.base import NullProgress
from lora_bakery.trainer.leco import LecoCallbacks, LecoError, train_leco
from lora_bakery.trainer.leco.run import choose_autocast
from lora_bakery.trainer.saving import load_network
from tests.reference_loader import merge_network

from .helpers import config, tiny_host


class StopAfter(NullProgress):
    """A progress whose Interrupt button is pressed after ``n`` steps (as a user would)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def step(self, n: int = 1, text: str | None = None) -> None:
        super().step(n, text)
        if self.done >= self.n:
            self.interrupt()


def _assert_loads_in_a1111(path) -> None:
    tensors, meta = load_network(path)
    assert all(v.dtype == torch.float16 for k, v in tensors.items() if not k.endswith(".alpha") or v.is_floating_point())
    _, loaded, errors = merge_network(tiny_host().model().parameters, tensors, 1.0, 1.0)
    assert loaded.unmatched == [] and errors == [] and loaded.modules
    assert meta["ss_network_module"] == "networks.lora"


def test_interrupt_keeps_loadable_files_and_resume_is_exact(tmp_path) -> None:
    host = tiny_host()
    settings = {"training": {"steps": 4}, "saving": {"save_every": 2, "precision": "fp16"}}
    full = train_leco(config(tmp_path / "full", **settings), host.model(), views=host.views())
    assert [p.name for p in full.files] == ["leco_slider-000002.safetensors", "leco_slider.safetensors"]

    out = tmp_path / "stopped"
    stopped = train_leco(config(out, **settings), host.model(), StopAfter(3), views=host.views())
    assert stopped.status == "interrupted" and stopped.final is None and stopped.steps == 3
    assert stopped.interrupted_file.name == "leco_slider-interrupted.safetensors"
    for path in (out / "leco_slider-000002.safetensors", stopped.interrupted_file):
        _assert_loads_in_a1111(path)

    resumed = train_leco(
        config(out, training={"steps": 4}, saving={"save_every": 2, "precision": "fp16", "resume": str(stopped.state_dir)}),
        host.model(), views=host.views(),
    )
    assert resumed.status == "finished" and resumed.losses == full.losses
    a, _ = load_network(full.final)
    b, _ = load_network(resumed.final)
    assert all(a[k].equal(b[k]) for k in a)


def test_existing_files_are_not_overwritten(tmp_path) -> None:
    (tmp_path / "leco_slider.safetensors").write_bytes(b"mine")
    host = tiny_host()
    with pytest.raises(LecoError, match="already exists") as info:
        train_leco(config(tmp_path, training={"steps": 1}), host.model(), views=host.views())
    assert info.value.reason == "exists"
    assert (tmp_path / "leco_slider.safetensors").read_bytes() == b"mine"


def test_nan_stops_with_the_last_good_file(tmp_path) -> None:
    host = tiny_host()
    cfg = config(tmp_path, training={"steps": 3, "lr": 1e30}, saving={"save_every": 1})
    with pytest.raises(LecoError, match="loss became") as info:
        train_leco(cfg, host.model(), views=host.views())
    assert info.value.reason == "nan"
    kept = info.value.result.files[-1]
    assert str(kept) in str(info.value)
    tensors, _ = load_network(kept)
    assert all(torch.isfinite(v.float()).all() for v in tensors.values())


def test_bidirectional_with_anchors(tmp_path) -> None:
    outputs = []

    class Record(LecoCallbacks):
        def on_step(self, step, total, output, lr):
            outputs.append(output)

    host = tiny_host()
    cfg = config(
        tmp_path, training={"steps": 2, "bidirectional": True, "anchor_weight": 2.0},
        anchors=[{"prompt": "a cat"}, {"prompt": "a photo", "weight": 0.5}],
    )
    result = train_leco(cfg, host.model(), views=host.views(), callbacks=Record())
    assert result.status == "finished" and len(outputs) == 2
    assert outputs[0].anchor < 1e-8  # zero up-weights: the slider is the base model at step 1
    assert outputs[1].anchor > 0.0 and outputs[1].slider > 0.0
    assert "bidirectional" in load_network(result.final)[1]["ss_training_comment"]


def test_fp16_refused_at_run_time_too() -> None:
    with pytest.raises(LecoError, match="NaN") as info:
        choose_autocast("fp16", torch.float32, torch.device("cpu"))
    assert info.value.reason == "precision"
    assert choose_autocast("fp32", torch.float32, torch.device("cpu")) == (None, [])
    assert choose_autocast("bf16", torch.float32, torch.device("cpu"))[0] == torch.bfloat16


def test_sdxl_slider_trains_and_loads_in_a1111(tmp_path) -> None:
    host = tiny_host("sdxl")
    cfg = config(tmp_path, training={"steps": 2, "max_denoising_steps": 2}, network={"modules": "xattn"})
    result = train_leco(cfg, host.model(), views=host.views())
    tensors, meta = load_network(result.final)
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0"
    assert all(k.startswith("lora_unet_input_blocks_") or k.startswith("lora_unet_middle_block_")
               or k.startswith("lora_unet_output_blocks_") for k in tensors)
    _, loaded, errors = merge_network(host.model().parameters, tensors, 1.0, 1.0)
    assert loaded.unmatched == [] and errors == [] and len(loaded.modules) * 3 == len(tensors)
