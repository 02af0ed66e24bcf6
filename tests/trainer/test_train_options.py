"""Loop options on short real runs (checkpointing, SDXL, bf16, long captions, the CLI) and the
pure helpers (prompt syntax, precision choice, run length)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.loop.checkpoint import load_checkpoint
from lora_bakery.trainer.loop.precision import choose_precision
from lora_bakery.trainer.loop.setup import plan_schedule
from lora_bakery.trainer.loop.toy import make_toy_dataset
from lora_bakery.trainer.train import SamplePrompt, parse_prompt_line, parse_prompts, train

pytestmark = pytest.mark.usefixtures("one_thread")


def _config(data: Path, out: Path, **training) -> TrainConfig:
    return TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data), "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}},
        "network": {"dim": 4, "alpha": 4},
        "optimizer": {"lr": 3e-3, "scheduler": "constant"},
        "training": {"epochs": 1, "mixed_precision": "no", "seed": 3, **training},
        "saving": {"output_dir": str(out), "output_name": "opt", "save_precision": "float"},
    })


def _hash(parameters) -> str:
    digest = hashlib.sha256()
    for key in sorted(parameters):
        digest.update(parameters[key].detach().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def test_gradient_checkpointing_gives_the_same_training(tmp_path, tiny_sd15_path):
    from lora_bakery.trainer.saving import load_network

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    parts = load_checkpoint(tiny_sd15_path)
    plain = train(_config(data, tmp_path / "a"), parts)
    ckpt = train(_config(data, tmp_path / "b", gradient_checkpointing=True), parts)
    assert ckpt.losses == pytest.approx(plain.losses, rel=1e-5)
    a, b = load_network(plain.final)[0], load_network(ckpt.final)[0]
    te_up = [k for k in a if k.startswith("lora_te_") and k.endswith("lora_up.weight")]
    assert te_up and all(b[k].abs().sum() > 0 for k in te_up), "text-encoder adapters got no gradient"
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


def test_sdxl_bf16_long_captions(tmp_path, tiny_sdxl_path):
    from lora_bakery.trainer.saving import load_network

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    parts = load_checkpoint(tiny_sdxl_path)
    before = _hash(parts.parameters)
    config = _config(data, tmp_path / "out", mixed_precision="bf16", max_token_length=150)
    result = train(config, parts)
    assert result.status == "finished" and all(torch.isfinite(torch.tensor(result.losses)))
    tensors, meta = load_network(result.final)
    assert {k.split("_")[1] for k in tensors} == {"unet", "te1", "te2"}
    assert meta["ss_base_model_version"] == "sdxl_base_v1-0" and meta["ss_max_token_length"] == "150"
    assert _hash(parts.parameters) == before


def test_bakery_train_command(tmp_path, tiny_sd15_path, capsys):
    from lora_bakery.cli import main

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    config = _config(data, tmp_path / "out")
    config.sampling.prompts = ["sks --d 3 --s 2 --w 64 --h 64"]
    path = config.save(tmp_path / "cfg.toml")
    assert main(["train", str(path), "--ckpt", str(tiny_sd15_path)]) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "out" / "opt.safetensors") in out
    assert (tmp_path / "out" / "sample" / "opt_e000001_00_3.png").is_file()


def test_prompt_syntax():
    defaults = SamplePrompt("", "lowres", 1234, 512, 512, 20, 7.0, "Euler a")
    p = parse_prompt_line("sks dog, park --n blurry, bad --w 640 --h 770 --d 42 --l 5.5 --s 28 --ss DDIM", defaults)
    assert (p.prompt, p.negative_prompt, p.width, p.height, p.seed, p.cfg_scale, p.steps, p.sampler) == (
        "sks dog, park", "blurry, bad", 640, 768, 42, 5.5, 28, "DDIM")
    q = parse_prompt_line("just a prompt", defaults)
    assert (q.negative_prompt, q.seed, q.width, q.sampler) == ("lowres", 1234, 512, "Euler a")
    assert [x.prompt for x in parse_prompts(["# comment", "", "a --s 3", "b"], defaults)] == ["a", "b"]
    with pytest.raises(ValueError, match="--x"):
        parse_prompt_line("a --x 3", defaults)
    with pytest.raises(ValueError, match="needs a number"):
        parse_prompt_line("a --w wide", defaults)
    with pytest.raises(ValueError, match="between 1 and 1000"):
        parse_prompt_line("a --s 0", defaults)


def test_precision_choice():
    fp32 = torch.zeros(1)
    assert choose_precision("fp16", fp32).autocast_dtype is None  # CPU: fp32, said in messages
    assert choose_precision("fp16", fp32).messages
    assert choose_precision("bf16", fp32).autocast_dtype == torch.bfloat16
    assert choose_precision("no", fp32.half()).autocast_dtype == torch.float16  # a half host must autocast
    assert not choose_precision("bf16", fp32).use_scaler


def test_run_length():
    s = plan_schedule(batches_per_epoch=10, grad_accum=3, epochs=4, max_steps=None)
    assert (s.steps_per_epoch, s.epochs, s.total_steps) == (4, 4, 16)
    s = plan_schedule(batches_per_epoch=10, grad_accum=1, epochs=8, max_steps=25)
    assert (s.epochs, s.total_steps) == (3, 25)


@pytest.mark.parametrize("kind", ["locon", "loha", "lokr", "dora", "dylora"])
def test_every_saved_network_kind_trains_and_saves(kind, tmp_path, tiny_sd15_path):
    """The config offers these kinds; each must run end to end and write its own key layout."""
    from lora_bakery.trainer.saving import load_network

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    config = _config(data, tmp_path / "out")
    config.network.type = kind
    if kind == "dylora":
        config.network.dylora_unit = 2
    if kind == "locon":
        config.network.conv_dim, config.network.conv_alpha = 4, 4
    result = train(config, load_checkpoint(tiny_sd15_path))
    tensors, metadata = load_network(result.final)
    assert tensors and all(torch.isfinite(t.float()).all() for t in tensors.values())
    assert result.losses and all(loss == loss for loss in result.losses)
    marker = {"loha": "hada_w1_a", "lokr": "lokr_w1", "dora": "dora_scale"}.get(kind, "lora_down")
    assert any(marker in key for key in tensors), sorted(tensors)[:5]
    assert metadata["ss_network_dim"] == "4"
    if kind == "locon":
        assert any(".lora_down." in k and k.startswith("lora_unet_") and tensors[k].dim() == 4 and tensors[k].shape[-1] == 3
                   for k in tensors), "LoCon must adapt 3x3 convs"
