"""Issue 12 / 16 on real runs: what lands in the output folder and what the progress shows.

Every ``.safetensors`` under a LoRA output folder is a LoRA (Bake finished, Bake interrupted, LECO),
files are group/other-readable, the metadata has kohya's folder-mode keys and values,
``enable_bucket = false`` resizes and crops like kohya, and the progress shows ``avr_loss``.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lora_bakery.trainer.loop.checkpoint import load_checkpoint
from lora_bakery.trainer.loop.toy import make_toy_dataset
from lora_bakery.trainer.saving import load_network
from lora_bakery.trainer.train import train
from tests.reference_loader import merge_network

from .test_integrity_data import Recorder, make_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


class StopAfter(Recorder):
    """Presses Interrupt once ``n`` optimizer steps are done."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.steps = n, 0

    def step(self, n=1, text=None):
        super().step(n, text)
        if text and text.startswith("epoch"):
            self.steps += n

    @property
    def interrupted(self):
        return self.steps >= self.n


def assert_only_loras(folder: Path, checkpoint: dict) -> list[str]:
    """Every ``.safetensors`` under ``folder`` loads as A1111 loads a LoRA, with no unmatched key."""
    names = []
    for path in sorted(folder.rglob("*.safetensors")):
        tensors, meta = load_network(path)
        assert tensors and all(k.startswith(("lora_unet_", "lora_te")) for k in tensors), path
        assert meta.get("ss_network_module"), path
        _, loaded, errors = merge_network(checkpoint, tensors, 1.0, 1.0)
        assert loaded.unmatched == [] and errors == [] and loaded.modules, path
        names.append(str(path.relative_to(folder)))
    return names


# ----------------------------------------------------------------------- 5./6. state files, file modes

def test_bake_state_is_kept_only_when_asked_or_interrupted_and_never_listed_as_a_lora(tmp_path, tiny_sd15_path,
                                                                                        umask_022):
    data = make_toy_dataset(tmp_path / "data", count=2, repeats=2)
    parts = load_checkpoint(tiny_sd15_path)
    plain = tmp_path / "plain"
    train(make_config(data, plain, epochs=2), parts)
    assert assert_only_loras(plain, parts.parameters) == ["run-000001.safetensors", "run.safetensors"]
    assert not (plain / "run-state").exists()

    kept = tmp_path / "kept"
    config = make_config(data, kept, epochs=2)
    config.saving.save_state = True
    train(config, parts)
    assert assert_only_loras(kept, parts.parameters) == ["run-000001.safetensors", "run.safetensors"]
    assert sorted(p.name for p in (kept / "run-state").iterdir()) == [
        "network.tensors", "optimizer.tensors", "rng.tensors", "train_state.json"]

    stopped_dir = tmp_path / "stopped"
    stopped = train(make_config(data, stopped_dir, epochs=2), parts, StopAfter(5))  # 4 steps an epoch
    assert stopped.status == "interrupted" and stopped.state_dir == stopped_dir / "run-state"
    assert assert_only_loras(stopped_dir, parts.parameters) == ["run-000001.safetensors", "run-interrupted.safetensors"]
    resumed_cfg = make_config(data, stopped_dir, epochs=2)
    resumed_cfg.saving.resume = str(stopped.state_dir)
    resumed = train(resumed_cfg, parts)
    assert resumed.status == "finished" and resumed.steps == 8

    # umask-derived modes (0644 / 0755 under 022), like every other file the webui writes
    for path in (plain / "run.safetensors", stopped.interrupted_file, kept / "run-state" / "network.tensors"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE((kept / "run-state").stat().st_mode) == 0o755


def test_lora_files_follow_the_umask(tmp_path):
    from lora_bakery.trainer.saving import save_network

    tensors = {"lora_unet_x.lora_down.weight": torch.zeros(2, 3)}
    old = os.umask(0o022)
    try:
        readable = save_network(tmp_path / "a.safetensors", tensors)
        os.umask(0o077)
        private = save_network(tmp_path / "b.safetensors", tensors)
    finally:
        os.umask(old)
    assert stat.S_IMODE(readable.stat().st_mode) == 0o644  # group/other-readable: mkstemp gave 0600
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors", "b.safetensors"]


def test_leco_state_only_when_asked_or_interrupted_and_never_listed_as_a_lora(tmp_path):
    from lora_bakery.trainer.leco import train_leco
    from tests.trainer.leco.helpers import config, tiny_host

    host = tiny_host()
    settings = {"training": {"steps": 4}, "saving": {"save_every": 2}}
    full = train_leco(config(tmp_path / "full", **settings), host.model(), views=host.views())
    assert full.state_dir is None and not (tmp_path / "full" / "leco_slider-state").exists()
    assert assert_only_loras(tmp_path / "full", host.model().parameters) == [
        "leco_slider-000002.safetensors", "leco_slider.safetensors"]
    meta = load_network(full.final)[1]
    assert meta["ss_clip_skip"] == "None" and "modelspec.encoder_layer" not in meta
    assert "ss_network_args" not in meta

    asked = train_leco(config(tmp_path / "asked", training={"steps": 2}, saving={"save_every": 0, "save_state": True}),
                       host.model(), views=host.views())
    assert asked.state_dir and (asked.state_dir / "network.tensors").is_file()
    assert assert_only_loras(tmp_path / "asked", host.model().parameters) == ["leco_slider.safetensors"]

    class Stop(Recorder):
        @property
        def interrupted(self):
            return sum(kind == "step" for kind, _ in self.events) >= 1

    stopped = train_leco(config(tmp_path / "stopped", **settings), host.model(), Stop(), views=host.views())
    assert stopped.status == "interrupted" and (stopped.state_dir / "rng.tensors").is_file()
    assert assert_only_loras(tmp_path / "stopped", host.model().parameters) == ["leco_slider-interrupted.safetensors"]


# ----------------------------------------------------------------------- 7. metadata

#: kohya train_network.py, the folder-mode ("train_data_dir") block (reference/kohya-trainer.md §3).
KOHYA_FOLDER_KEYS = (
    "ss_batch_size_per_device", "ss_total_batch_size", "ss_resolution", "ss_color_aug", "ss_flip_aug",
    "ss_random_crop", "ss_shuffle_caption", "ss_enable_bucket", "ss_bucket_no_upscale", "ss_min_bucket_reso",
    "ss_max_bucket_reso", "ss_keep_tokens", "ss_dataset_dirs", "ss_reg_dataset_dirs", "ss_tag_frequency",
    "ss_bucket_info",
)


def test_folder_mode_metadata_as_kohya_writes_it(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", count=4, repeats=1)
    parts = load_checkpoint(tiny_sd15_path)
    assert parts.clip_skip == 1  # the host's "no skip"
    config = make_config(data, tmp_path / "a", {"flip_aug": True, "keep_tokens": 2}, batch_size=2, grad_accum=2)
    meta = load_network(train(config, parts).final)[1]
    assert set(KOHYA_FOLDER_KEYS) <= set(meta)
    assert (meta["ss_flip_aug"], meta["ss_color_aug"], meta["ss_random_crop"], meta["ss_shuffle_caption"]) == (
        "True", "False", "False", "False")
    assert meta["ss_keep_tokens"] == "2" and meta["ss_total_batch_size"] == "4" and meta["ss_batch_size_per_device"] == "2"
    assert "ss_network_args" not in meta  # kohya leaves it out without network args (it was "None")
    assert meta["ss_clip_skip"] == "None" and "modelspec.encoder_layer" not in meta  # unset, as kohya

    locon = make_config(data, tmp_path / "b", clip_skip=2)
    locon.network.type, locon.network.conv_dim, locon.network.conv_alpha = "locon", 2, 1.0
    meta = load_network(train(locon, parts).final)[1]
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "2", "conv_alpha": "1.0"}
    assert meta["ss_clip_skip"] == "2" and meta["modelspec.encoder_layer"] == "2"


# ----------------------------------------------------------------------- 8. enable_bucket = false

def test_bucketing_off_resizes_and_crops_every_image_like_kohya(tmp_path, tiny_sd15_path):
    from lora_bakery.trainer.data.dataset import build_plan
    from lora_bakery.trainer.data.images import load_pixels

    folder = tmp_path / "data" / "1_zqx"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, size in (("square", (64, 64)), ("wide", (96, 64)), ("tall", (48, 80))):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text("zqx", encoding="utf-8")
    config = make_config(folder.parent, tmp_path / "out", {"enable_bucket": False})
    plan = build_plan(config)
    assert not plan.skipped and {i.bucket for i in plan.items} == {(64, 64)}
    by_name = {i.image.stem: i for i in plan.items}
    assert by_name["tall"].choice.resized == (64, 107)  # 80 * 64/48 = 106.67 -> int(x + 0.5)
    # kohya trim_and_resize_if_required: Lanczos when enlarging, then the centre crop
    tall = Image.open(folder / "tall.png").resize((64, 107), Image.LANCZOS).crop((0, 21, 64, 85))
    expected = torch.from_numpy(np.asarray(tall, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)
    assert torch.allclose(load_pixels(by_name["tall"]), expected)
    wide = np.asarray(Image.open(folder / "wide.png"), dtype=np.float32)[:, 16:80] / 127.5 - 1
    assert torch.allclose(load_pixels(by_name["wide"]), torch.from_numpy(wide).permute(2, 0, 1))
    result = train(config, load_checkpoint(tiny_sd15_path))  # cached latents
    assert result.steps == 3
    meta = load_network(result.final)[1]
    assert meta["ss_enable_bucket"] == "False" and meta["ss_num_train_images"] == "3"


# ----------------------------------------------------------------------- 9. avr_loss

def test_progress_shows_the_step_loss_and_kohyas_running_mean(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", count=3, repeats=1)
    progress = Recorder()
    result = train(make_config(data, tmp_path / "out", epochs=2), load_checkpoint(tiny_sd15_path), progress)
    texts = [text for kind, text in progress.events if kind == "step" and text.startswith("epoch")]
    assert len(texts) == 6 == len(result.losses)
    for step, text in enumerate(texts, 1):
        loss, avr = (float(v) for v in re.search(r"loss (\S+) · avr_loss (\S+)", text).groups())
        window = result.losses[max(0, step - 3):step]  # kohya's LossRecorder: the last epoch's worth
        assert loss == pytest.approx(result.losses[step - 1], abs=6e-5)
        assert avr == pytest.approx(sum(window) / len(window), abs=6e-5)
    assert texts[-1].count("avr_loss") == 1


def test_bakery_train_skip_bad_images_prints_the_list_and_avr_loss(tmp_path, tiny_sd15_path, capsys):
    from lora_bakery.cli import main

    from .test_integrity_data import _messy_dataset

    root = _messy_dataset(tmp_path / "data")
    path = make_config(root, tmp_path / "out").save(tmp_path / "cfg.toml")
    assert main(["train", str(path), "--ckpt", str(tiny_sd15_path)]) == 1
    refused = capsys.readouterr().err
    assert "--skip-bad-images" in refused and "cut.jpg" in refused
    assert main(["train", str(path), "--ckpt", str(tiny_sd15_path), "--skip-bad-images"]) == 0
    err = capsys.readouterr().err
    assert "4 images left out" in err and "cut.png: the file ends early" in err
    assert "avr_loss" in err
    assert err.index("4 images left out") < err.index("Baking")
