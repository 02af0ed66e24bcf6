"""End-to-end training on the tiny SD1.5 model: it learns, files load, the host is untouched,
resume equals an uninterrupted run, NaN keeps the last good epoch, bad input says what is wrong.

One reference run (module fixture) is shared by several tests; torch runs single-threaded here
because the CI's two cores are shared (two threads there are ~8x slower than one).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
import torch

from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.loop.checkpoint import load_checkpoint
from lora_bakery.trainer.loop.toy import make_toy_dataset
from lora_bakery.trainer.train import TrainCallbacks, TrainError, train

pytestmark = pytest.mark.usefixtures("one_thread")


def make_config(data: Path, out: Path, **sections) -> TrainConfig:
    base = {
        "dataset": {"train_data_dir": str(data), "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}},
        "network": {"dim": 4, "alpha": 4},
        "optimizer": {"lr": 3e-3, "scheduler": "constant"},
        "training": {"epochs": 2, "mixed_precision": "no", "batch_size": 2, "seed": 7},
        "saving": {"output_dir": str(out), "output_name": "toy", "save_precision": "float", "save_state": True},
        "sampling": {"prompts": ["sks, disc --d 5 --s 2 --w 64 --h 64"], "every_n_epochs": 1},
    }
    for key, values in sections.items():
        base[key] = {**base.get(key, {}), **values}
    return TrainConfig.from_dict(base)


def tensor_hash(parameters) -> str:
    digest = hashlib.sha256()
    for key in sorted(parameters):
        digest.update(key.encode())
        digest.update(parameters[key].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class HostSampler:
    """Samples through the standalone host, which renders from the training views (adapters in place)."""

    uses_training_views = True

    def __init__(self, host) -> None:
        self.host = host
        self.calls: list[tuple[int, object]] = []

    def __call__(self, prompts, lora_file):
        from lora_bakery.extension.host.base import GenerationRequest

        self.calls.append((len(prompts), lora_file))
        requests = [GenerationRequest(**dataclasses.asdict(p)) for p in prompts]
        return [g.image for g in self.host.generate(requests)]


class StopAfter:
    """A progress that asks the run to stop once ``n`` optimizer steps are done."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.steps = 0
        self.training = False

    def begin(self, total, text=""):
        self.training = text.startswith("Baking")

    def step(self, n=1, text=None):
        if self.training:
            self.steps += n

    def preview(self, image):
        pass

    @property
    def interrupted(self):
        return self.training and self.steps >= self.n

    def end(self):
        pass


@pytest.fixture(scope="module")
def host(tiny_sd15_path):
    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    return DiffusersHost(tiny_sd15_path, device="cpu")


@pytest.fixture(scope="module")
def baked(host, tmp_path_factory):
    root = tmp_path_factory.mktemp("bake")
    data = make_toy_dataset(root / "data", count=4, repeats=3)
    config = make_config(data, root / "out")
    parts = host.model()
    before = tensor_hash(parts.parameters)
    sampler = HostSampler(host)
    import gc

    from lora_bakery.trainer.adapters import Network

    gc.collect()
    existing = [o for o in gc.get_objects() if type(o) is Network]  # other tests' (cached) networks
    result = train(config, parts, sampler=sampler, views=host.views())
    return {"root": root, "data": data, "config": config, "result": result, "before": before,
            "after": tensor_hash(parts.parameters), "parts": parts, "sampler": sampler,
            "networks_before": {id(n) for n in existing}, "_keep": existing}


def _eval_losses(parts, config, lora_file, captions):
    """MSE of the U-Net's noise prediction on the dataset at fixed noise and timesteps, without
    and with the saved LoRA (loaded from the file into a fresh network)."""
    from lora_bakery.trainer.adapters import create_network, make_options
    from lora_bakery.trainer.data.dataset import build_plan
    from lora_bakery.trainer.data.latents import LatentCache
    from lora_bakery.trainer.loop.text import TextConditioner
    from lora_bakery.trainer.models import build_views
    from lora_bakery.trainer.noise import NoiseSchedule
    from lora_bakery.trainer.saving import load_network

    views = build_views(parts.parameters, "sd1")
    network = create_network(views, "lora", make_options("lora", dim=4, alpha=4))
    network.load_kohya_state_dict(load_network(lora_file)[0])
    plan = build_plan(config, "sd1")
    cache = LatentCache(plan, views.vae, seed=0)
    cache.prepare()
    latents = torch.stack([cache.get(i) for i in range(len(plan.items))]).repeat(4, 1, 1, 1) * 0.18215
    gen = torch.Generator().manual_seed(5)
    timesteps = torch.randint(50, 950, (latents.shape[0],), generator=gen)
    noise = torch.randn(latents.shape, generator=gen)
    noisy = NoiseSchedule.create().add_noise(latents, noise, timesteps)
    text = TextConditioner("sd1", views.text_encoders, parts.tokenizers)

    def loss(caption):
        with torch.no_grad():
            context, _ = text.encode([caption] * latents.shape[0], torch.device("cpu"))
            return torch.nn.functional.mse_loss(views.unet(noisy, timesteps, context).sample, noise).item()

    out = {}
    for caption in captions:
        plain = loss(caption)
        with network.applied_to_model():
            out[caption] = (plain, loss(caption))
    return out


def test_it_learns_the_trigger(baked):
    result = baked["result"]
    assert result.status == "finished" and result.steps == 12 and result.images_seen == 24
    losses = _eval_losses(baked["parts"], baked["config"], result.final, ["sks, disc", "a photo of a dog"])
    (trig_before, trig_after), (other_before, other_after) = losses["sks, disc"], losses["a photo of a dog"]
    assert trig_after < 0.93 * trig_before, losses  # a clear margin
    assert trig_before - trig_after > other_before - other_after, losses


def test_files_are_kohya_files(baked):
    from lora_bakery.trainer.saving import load_network, parse_metadata

    result, out = baked["result"], baked["root"] / "out"
    assert [p.name for p in result.files] == ["toy-000001.safetensors", "toy.safetensors"]
    tensors, meta = load_network(out / "toy.safetensors")
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in tensors)
    assert any(k.startswith("lora_te_text_model_encoder_layers_0_") for k in tensors)
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["ss_epoch"] == "2" and meta["ss_steps"] == "12" and meta["ss_output_name"] == "toy"
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["ss_sd_model_name"] == "tiny-sd15.safetensors" and len(meta["ss_new_sd_model_hash"]) == 64
    assert meta["sshs_model_hash"] and meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    parsed = parse_metadata(meta)
    assert parsed["ss_tag_frequency"] == {"3_sks": {"sks": 4, "disc": 4}}
    assert load_network(out / "toy-000001.safetensors")[1]["ss_epoch"] == "1"
    assert result.loss_plot == out / "toy-loss.png" and result.loss_plot.stat().st_size > 1000
    assert (out / "toy-state" / "train_state.json").is_file()


def test_host_model_untouched(baked, host):
    assert baked["before"] == baked["after"]
    views = host.views()
    for module in [views.unet, *views.text_encoders]:
        assert not module.training
        assert all(not p.requires_grad for p in module.parameters())
        assert all("forward" not in m.__dict__ for m in module.modules()), "an adapter is still routed in"
    import gc

    from lora_bakery.trainer.adapters import Network

    gc.collect()
    # The host keeps a small cache of networks built from saved files (for sample generation);
    # those are not the training network.
    cached = {id(n) for n in getattr(getattr(host, "_file_networks", None), "_cache", {}).values()}
    known = cached | baked["networks_before"]
    leftover = [o for o in gc.get_objects() if type(o) is Network and id(o) not in known]
    assert not leftover, "the network outlived the run"


def test_samples_each_epoch(baked):
    result = baked["result"]
    assert [p.name for p in result.samples] == ["toy_e000001_00_5.png", "toy_e000002_00_5.png"]
    assert baked["sampler"].calls == [(1, baked["root"] / "out" / "toy-000001.safetensors"), (1, None)]


def test_interrupt_then_resume_equals_uninterrupted(baked, host, tmp_path):
    from lora_bakery.trainer.adapters import create_network, make_options
    from lora_bakery.trainer.models import build_views
    from lora_bakery.trainer.saving import load_network

    parts = baked["parts"]
    config = make_config(baked["data"], tmp_path / "out")
    stopped = train(config, parts, StopAfter(8), sampler=HostSampler(host), views=host.views())
    assert stopped.status == "interrupted" and stopped.steps == 8 and stopped.final is None
    assert stopped.interrupted_file.name == "toy-interrupted.safetensors"
    # the interrupted file is a loadable network file
    network = create_network(build_views(parts.parameters, "sd1"), "lora", make_options("lora", dim=4, alpha=4))
    assert network.load_kohya_state_dict(load_network(stopped.interrupted_file)[0]) == []
    resumed_cfg = make_config(baked["data"], tmp_path / "out", saving={"resume": str(stopped.state_dir)})
    resumed = train(resumed_cfg, parts, sampler=HostSampler(host))
    assert resumed.status == "finished" and resumed.steps == 12
    assert resumed.losses == baked["result"].losses
    ours, ref = load_network(resumed.final)[0], load_network(baked["result"].final)[0]
    assert ours.keys() == ref.keys()
    assert all(torch.equal(ours[k], ref[k]) for k in ref)
    assert tensor_hash(parts.parameters) == baked["before"]


class PoisonAfterFirstEpoch(TrainCallbacks):
    """Blows one adapter weight up to NaN after epoch 1 (what a diverging run does to itself)."""

    def on_epoch_end(self, info, files):
        if info.epoch == 1:
            with torch.no_grad():
                next(iter(info.network.parameters())).fill_(float("nan"))


def test_nan_loss_stops_and_keeps_last_good_epoch(baked, tmp_path):
    from lora_bakery.trainer.saving import load_network

    config = make_config(baked["data"], tmp_path / "out", sampling={"prompts": []})
    with pytest.raises(TrainError) as info:
        train(config, baked["parts"], callbacks=PoisonAfterFirstEpoch())
    err = info.value
    assert err.reason == "nan" and "toy-000001.safetensors" in str(err) and "epoch 2" in str(err)
    assert [p.name for p in err.result.files] == ["toy-000001.safetensors"]
    tensors, _ = load_network(tmp_path / "out" / "toy-000001.safetensors")
    assert all(torch.isfinite(t).all() for t in tensors.values())
    assert not (tmp_path / "out" / "toy.safetensors").exists()
    assert tensor_hash(baked["parts"].parameters) == baked["before"]


def test_no_images_is_a_clear_error(tmp_path, tiny_sd15_path):
    (tmp_path / "data" / "5_sks").mkdir(parents=True)
    config = make_config(tmp_path / "data", tmp_path / "out")
    with pytest.raises(TrainError) as info:
        train(config, load_checkpoint(tiny_sd15_path))
    assert info.value.reason == "data" and "no training images" in str(info.value)


def test_broken_image_is_named(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    broken = data / "1_sks" / "001.png"
    broken.write_bytes(broken.read_bytes()[:120])  # the header (size) still reads, the pixels do not
    config = make_config(data, tmp_path / "out")
    with pytest.raises(TrainError) as info:
        train(config, load_checkpoint(tiny_sd15_path))
    assert info.value.reason == "data" and "001.png" in str(info.value)


def test_existing_output_is_not_overwritten(baked):
    config = make_config(baked["data"], baked["root"] / "out", saving={"save_state": False})
    with pytest.raises(TrainError, match="already exists"):
        train(config, baked["parts"])


def test_python_m_trainer_runs_a_toml(tmp_path, tiny_sd15_path):
    import subprocess
    import sys

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    config = make_config(data, tmp_path / "out", training={"epochs": 1}, sampling={"prompts": []})
    path = config.save(tmp_path / "cfg.toml")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "lora_bakery.trainer", "train", str(path), "--ckpt", str(tiny_sd15_path)],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "toy.safetensors").is_file()
    assert json.loads((tmp_path / "out" / "toy-state" / "train_state.json").read_text())["current_step"] == 1
