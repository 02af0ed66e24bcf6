"""Environment panel handlers with a real tiny checkpoint and real ModelParts."""

from __future__ import annotations

import torch

from lora_bakery.extension.host.base import ModelParts
from lora_bakery.extension.host.diffusers_host import DiffusersHost
from lora_bakery.extension.ui import compat, status_panel


def test_describe_model_counts_parameters():
    parts = ModelParts(
        architecture="sdxl",
        prediction="v",
        parameters={"a": torch.zeros(1000, 1000), "b": torch.zeros(3)},
        checkpoint_name="model.safetensors",
        checkpoint_hash="0123456789abcdef",
        clip_skip=2,
    )
    md = status_panel.describe_model(parts)
    assert "`sdxl`" in md and "`v`" in md and "1.00 M (2 tensors)" in md
    assert "model.safetensors" in md and "0123456789" in md and "Clip skip" in md
    assert "GPU" not in md


def test_describe_model_says_how_a_bake_runs_under_medvram():
    class Placement:
        description = "--medvram-sdxl"

    parts = ModelParts(architecture="sdxl", prediction="eps", parameters={"a": torch.zeros(2)}, placement=Placement())
    md = status_panel.describe_model(parts)
    assert "webui --medvram-sdxl" in md and "only the U-Net on the GPU" in md and "restored" in md


def test_check_model_on_the_tiny_checkpoint(tiny_sd15_path):
    md = status_panel.check_model(lambda: DiffusersHost(tiny_sd15_path))
    assert "`sd1`" in md and tiny_sd15_path.name in md


def test_check_model_reports_errors_without_raising(tmp_path):
    assert status_panel.check_model(None).startswith(compat.ERROR_PREFIX)
    assert status_panel.check_model(None, "Forge is not supported yet.").endswith(
        "Forge is not supported yet."
    )
    md = status_panel.check_model(lambda: DiffusersHost(tmp_path / "missing.safetensors"))
    assert md.startswith(compat.ERROR_PREFIX) and "missing.safetensors" in md
    assert "Traceback" not in md


def test_feature_status_lists_every_feature():
    from lora_bakery.deps import feature_status

    status = feature_status()
    md = status_panel.feature_status_markdown()
    for name in status:
        assert f"**{name}**" in md
    assert status_panel.describe_features({"x": (False, "needs y")}).endswith(
        "\n- **x** (unavailable): needs y"
    )
