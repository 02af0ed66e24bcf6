"""The "Bakery epoch" / "Bakery block preset" axes over the fake webui and a stand-in xyz_grid module."""

from __future__ import annotations

import sys
import types

import torch
from safetensors.torch import save_file

from lora_bakery.extension.compare.presets import DEFAULT_PRESETS
from lora_bakery.extension.host.a1111_xyz import BLOCKS_AXIS, EPOCH_AXIS, register_xyz_axes
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.webui import installed_fake_webui


class AxisOption:  # the constructor signature of xyz_grid.AxisOption
    def __init__(self, label, type, apply, format_value=None, confirm=None, cost=0.0, choices=None, prepare=None):
        self.label, self.type, self.apply, self.cost, self.choices = label, type, apply, cost, choices


def _xyz_scripts():
    xyz = types.SimpleNamespace(AxisOption=AxisOption, axis_options=[AxisOption("Seed", int, None)])
    script_class = type("Script", (), {"__module__": "xyz_grid.py"})
    return xyz, types.SimpleNamespace(scripts_data=[types.SimpleNamespace(script_class=script_class, module=xyz)])


def _save(path):
    save_file({"lora_unet_input_blocks_1_1_proj_in.lora_down.weight": torch.zeros(1, 4)}, str(path),
              metadata={"ss_base_model_version": "sd_v1"})


def test_axes_register_once_and_rewrite_the_prompt(tmp_path):
    with installed_fake_webui() as webui:
        webui.load(tiny_checkpoint("sd15"), "sd1")
        xyz, scripts = _xyz_scripts()
        sys.modules["modules.scripts"] = scripts
        try:
            assert register_xyz_axes(lambda: DEFAULT_PRESETS) and register_xyz_axes(lambda: DEFAULT_PRESETS)
            labels = [o.label for o in xyz.axis_options]
            assert labels.count(EPOCH_AXIS) == 1 and labels.count(BLOCKS_AXIS) == 1
            blocks_axis = next(o for o in xyz.axis_options if o.label == BLOCKS_AXIS)
            assert "MIDD" in blocks_axis.choices()
            lora_dir = tmp_path / "Lora"
            lora_dir.mkdir()
            for name in ("run-000001", "run-000002", "run"):
                _save(lora_dir / f"{name}.safetensors")
            webui.networks.lora_dir = str(lora_dir)
            p = webui.processing.StableDiffusionProcessingTxt2Img(sd_model=webui.shared.sd_model, prompt="cat <lora:run:0.7>", steps=1, width=32, height=32)
            next(o for o in xyz.axis_options if o.label == EPOCH_AXIS).apply(p, "2", ["1", "2"])
            assert p.prompt.startswith("cat <lora:bakery_run-000002_") and p.prompt.endswith(":0.7>")
            blocks_axis.apply(p, "OUTS", ["ALL", "OUTS"])
            name = p.prompt.split("<lora:")[1].split(":")[0]
            assert name in webui.networks.networks_in_memory and p.cached_c == [None, None]
            webui.processing.process_images(p)
            assert webui.networks.loaded_files[-1] == str(lora_dir / "run-000002.safetensors")
        finally:
            sys.modules.pop("modules.scripts", None)
