"""Reg images with DiffusersHost on the tiny SD1.5 model: real pixels, resume after interrupt, re-roll,
and the reg folder accepted by the trainer's folder mode as a regularization subset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from lora_bakery.extension.host.base import GenerationRequest, NullProgress
from lora_bakery.extension.host.diffusers_host import DiffusersHost
from lora_bakery.extension.reg import generate_reg, plan_reg, reroll
from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.data.dataset import build_plan

from .helpers import make_training, tiny_settings


class StopAfterFirstImage(NullProgress):
    """Presses Interrupt as soon as the first image is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.previews = 0

    def preview(self, image) -> None:
        self.previews += 1
        self.interrupt()


@pytest.fixture(scope="module")
def host(tiny_sd15_path):
    return DiffusersHost(tiny_sd15_path, device="cpu")


def test_generate_interrupt_resume_reroll_and_train_on_it(host, tmp_path):
    root = make_training(tmp_path / "train")
    out = tmp_path / "reg"
    settings = tiny_settings()
    stop = StopAfterFirstImage()
    first = generate_reg(host, plan_reg(root, out, settings), stop)
    assert first.interrupted and first.generated == ["10_chara/a.png"] and first.pending == 2
    assert stop.total == 3 and stop.done == 1 and first.discarded == 0

    run = generate_reg(host, plan_reg(root, out, settings))
    assert run.kept == ["10_chara/a.png"] and run.generated == ["10_chara/b.png", "3_outfit/e.png"]
    assert not run.interrupted and run.host_seconds <= run.seconds
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["images"]["10_chara/b.png"]
    assert (entry["width"], entry["height"], entry["seed"], entry["steps"]) == (32, 96, 101, 1)
    assert entry["sampler"] and entry["model"] == "tiny-sd15.safetensors" and len(entry["model_hash"]) == 8
    with Image.open(out / "10_chara/b.png") as img:
        assert img.size == (32, 96) and np.asarray(img.convert("RGB")).std() > 0
    assert (out / "3_outfit/e.txt").read_text(encoding="utf-8") == "shirt, skirt\n"

    # The saved image is exactly what the host makes for the same request (same prompt, seed, no LoRA).
    (direct,) = host.generate([GenerationRequest(prompt="1girl, smile", negative_prompt="lowres", seed=100,
                                                 width=64, height=64, steps=1, cfg_scale=1.0)])
    with Image.open(out / "10_chara/a.png") as img:
        saved = np.asarray(img.convert("RGB"))
    assert np.array_equal(saved, np.asarray(direct.image.convert("RGB")))

    rerolled = reroll(host, out, ["10_chara/a.png"], seeds=[5])
    assert rerolled.changed == ["10_chara/a.png"]
    with Image.open(out / "10_chara/a.png") as img:
        assert not np.array_equal(np.asarray(img.convert("RGB")), saved)

    config = TrainConfig.from_dict({"dataset": {"train_data_dir": str(root), "reg_data_dir": str(out),
                                                "general": {"resolution": 64, "min_bucket_reso": 64,
                                                            "max_bucket_reso": 128}}})
    plan = build_plan(config, "sd1")
    reg = {item.image.relative_to(out).as_posix(): item for item in plan.items if item.is_reg}
    assert sorted(reg) == ["10_chara/a.png", "10_chara/b.png", "3_outfit/e.png"]
    assert reg["10_chara/b.png"].caption == "1girl, red_hair, smile"
    assert plan.num_reg_images >= plan.num_train_images and not any("reg" in w for w in plan.warnings)
