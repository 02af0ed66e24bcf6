"""Grid planning (cells, batching, labels) and rendering through DiffusersHost and A1111Host (fakes)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from lora_bakery.extension.compare import Axis, GridSpec, plan_cells, plan_requests, run_grid
from lora_bakery.extension.host.base import NullProgress


def test_plan_cells_axes_seeds_and_labels(locon_run):
    spec = GridSpec(prompt="a cat, red", seed=7, x=Axis("epoch", [str(p) for p in locon_run]),
                    y=Axis("weight", [0.5, 1.0]), z=Axis("prompt_sr", ["red", "blue"]))
    cells = plan_cells(spec)
    assert len(cells) == 3 * 2 * 2
    assert {c.seed for c in cells} == {7}
    assert [c.lora for c in cells[:3]] == [str(p) for p in locon_run]
    assert [c.te for c in cells[:6:3]] == [0.5, 1.0] and cells[-1].prompt == "a cat, blue"
    assert cells[0].lora_tag() == "<lora:demo-000001:0.5>"
    assert [spec.x.label(i) for i in range(3)] == ["demo-000001", "demo-000002", "demo"]
    blocks = plan_cells(GridSpec(prompt="p", lora="x.safetensors", seed=1, x=Axis("blocks", ["ALL", "INS"]),
                                 y=Axis("te_weight", [0.25]), z=Axis("unet_weight", [0.75])))
    assert blocks[1].blocks[:4] == [1.0, 1.0, 1.0, 1.0] and blocks[1].unet == 0.75 and blocks[1].te == 0.25
    assert blocks[1].lora_tag() == "<lora:x:0.25:0.75:lbw=INS>"
    with pytest.raises(ValueError, match="twice"):
        plan_cells(GridSpec(prompt="p", lora="x", x=Axis("cfg", [1]), y=Axis("cfg", [2])))
    with pytest.raises(ValueError, match="not in the prompt"):
        plan_cells(GridSpec(prompt="p", lora="x", x=Axis("prompt_sr", ["zzz", "y"])))


def test_cells_that_share_settings_are_batched_by_consecutive_seeds():
    spec = GridSpec(prompt="p", lora="a.safetensors", x=Axis("seed", [10, 11, 12, 20, 13]), y=Axis("cfg", [5, 7]),
                    max_batch=3)
    cells = plan_cells(spec)
    requests = plan_requests(spec, cells)
    assert sum(len(m) for _, m in requests) == len(cells) == 10
    shapes = sorted((r.cfg_scale, r.seed, r.batch_size) for r, _ in requests)
    assert shapes == [(5, 10, 3), (5, 13, 1), (5, 20, 1), (7, 10, 3), (7, 13, 1), (7, 20, 1)]
    for req, members in requests:
        assert [cells[i].seed for i in members] == list(range(req.seed, req.seed + req.batch_size))


def test_run_grid_on_the_diffusers_host(sd15_host, locon_run, tmp_path, host_hash):
    digest = host_hash()

    class Recorder(NullProgress):
        previews = 0

        def preview(self, image):
            self.previews += 1

    progress = Recorder()
    spec = GridSpec(prompt="a cat", seed=5, width=64, height=64, steps=1,
                    x=Axis("epoch", [str(p) for p in locon_run[::2]], labels=["e1", "final"]),
                    y=Axis("weight", [0.0, 1.0]))
    result = run_grid(sd15_host, spec, tmp_path / "grid", progress)
    assert not result.interrupted and (progress.total, progress.done) == (4, 4) and progress.previews == 4
    grid = Image.open(result.grid)
    assert grid.width > 2 * 64 and grid.height > 2 * 64  # two columns and rows plus label margins
    data = json.loads((tmp_path / "grid" / "grid.json").read_text())
    assert data["x"] == ["e1", "final"] and data["y"] == ["weight: 0.0", "weight: 1.0"]
    assert len(list((tmp_path / "grid" / "cells").glob("*.png"))) == 4
    images = result.images
    assert images[0].tobytes() == images[1].tobytes()  # weight 0: both epochs give the base image
    assert images[2].tobytes() != images[3].tobytes()
    assert data["cells"][3]["txt2img_prompt"] == "a cat <lora:demo:1>"
    assert host_hash() == digest


def test_interrupt_stops_between_requests(sd15_host, locon_run, tmp_path):
    class StopAfterFirst(NullProgress):
        def step(self, n=1, text=None):
            super().step(n, text)
            self.interrupt()

    spec = GridSpec(prompt="a cat", lora=str(locon_run[-1]), seed=5, width=64, height=64, steps=1,
                    x=Axis("cfg", [3.0, 7.0]))
    result = run_grid(sd15_host, spec, tmp_path / "g", StopAfterFirst())
    assert result.interrupted and sum(im is not None for im in result.images) == 1
    assert Image.open(result.grid).size == (2 * 64, Image.open(result.grid).size[1]) and Image.open(result.grid).size[1] > 64


def test_a1111_grid_uses_files_where_they_are_and_leaves_nothing_behind(locon_run, tmp_path):
    import torch

    from lora_bakery.extension.host.a1111 import A1111Host
    from lora_bakery.trainer.tiny import tiny_checkpoint
    from tests.fakes.webui import installed_fake_webui

    with installed_fake_webui() as webui:
        lora_dir = tmp_path / "models" / "Lora"
        lora_dir.mkdir(parents=True)
        webui.networks.lora_dir = str(lora_dir)
        model = webui.load(tiny_checkpoint("sd15"), "sd1")
        clean = {k: v.detach().clone() for k, v in model.state_dict().items()}
        spec = GridSpec(prompt="a cat", seed=5, width=32, height=32, steps=1,
                        x=Axis("epoch", [str(p) for p in locon_run[:2]]), y=Axis("blocks", ["ALL", "OUTS"]))
        result = run_grid(A1111Host(), spec, tmp_path / "a1111")
        assert sum(im is not None for im in result.images) == 4
        assert set(webui.networks.loaded_files) <= {str(p) for p in locon_run}
        assert list(lora_dir.iterdir()) == []
        assert webui.networks.loaded_networks == []
        assert not any(k.startswith("bakery_") for k in webui.networks.available_networks)
        assert not any(k.startswith("bakery_") for k in webui.networks.networks_in_memory)
        now = model.state_dict()
        assert all(torch.equal(now[k], v) for k, v in clean.items())
        assert not webui.call_queue.queue_lock.locked()


def test_cell_infotext_survives_a1111_parsing_with_awkward_values():
    from lora_bakery.extension.compare.grid import Cell, GridSpec, cell_infotext
    from tests.fakes.a1111.infotext_utils import parse_generation_parameters

    spec = GridSpec(prompt="x", steps=28, width=832, height=1216, sampler="DPM++ 2M, Karras")
    cell = Cell(x=0, y=0, z=0, prompt="1girl, smile", negative_prompt="lowres, bad hands", seed=42, cfg_scale=5.5,
                lora="/out/mychar-000004.safetensors", te=0.8, unet=None, blocks=[1.0] * 17, blocks_label="MIDD")
    text = cell_infotext(cell, spec)
    pasted = parse_generation_parameters(text)
    assert pasted["Prompt"] == "1girl, smile <lora:mychar-000004:0.8:lbw=MIDD>"
    assert pasted["Negative prompt"] == "lowres, bad hands"
    assert pasted["Sampler"] == "DPM++ 2M, Karras"  # quoted because of the comma, unquoted by the parser
    assert (pasted["Steps"], pasted["CFG scale"], pasted["Seed"]) == ("28", "5.5", "42")
    assert (pasted["Size-1"], pasted["Size-2"]) == ("832", "1216")
    no_negative = Cell(x=0, y=0, z=0, prompt="a", negative_prompt="", seed=1, cfg_scale=7.0, lora=None, te=1.0,
                       unet=None, blocks=None)
    assert parse_generation_parameters(cell_infotext(no_negative, GridSpec(prompt="a")))["Negative prompt"] == ""
