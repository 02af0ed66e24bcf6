"""Placement on the trainer side: views rebound between device copies and the host's tensors,
cached text-encoder outputs, and fp8_base (on the CPU: bf16 autocast over float8 weights)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.loop.checkpoint import load_checkpoint
from lora_bakery.trainer.loop.run import Run
from lora_bakery.trainer.loop.toy import make_toy_dataset
from lora_bakery.trainer.models import build_views
from lora_bakery.trainer.placement import ViewPlacement, same_device
from lora_bakery.trainer.train import QuietProgress, TrainCallbacks, TrainError, train

FAKE_GPU = torch.device("cpu", 1)  # `.to()` copies to it, so a rebinding is visible as a new storage


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(data, out, network=None, general=None, **training) -> TrainConfig:
    return TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data), "general": {"resolution": 64, "min_bucket_reso": 64,
                                                             "max_bucket_reso": 64, **(general or {})}},
        "network": {"dim": 4, "alpha": 4, **(network or {})},
        "optimizer": {"lr": 3e-3, "scheduler": "constant"},
        "training": {"epochs": 1, "mixed_precision": "no", "seed": 3, **training},
        "saving": {"output_dir": str(out), "output_name": "pl", "save_precision": "float"},
    })


def _fingerprint(parameters, pointers: bool = True) -> dict[str, tuple]:
    return {k: (id(t), t.data_ptr() if pointers else 0, t.dtype, t.device,
                hashlib.sha256(t.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()).hexdigest())
            for k, t in parameters.items()}


def _storage(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


@pytest.mark.parametrize("fixture", ["tiny_sd15_path", "tiny_sdxl_path"])
def test_views_follow_to_device_and_offload_including_derived_views(request, fixture):
    parts = load_checkpoint(request.getfixturevalue(fixture))
    views = build_views(parts.parameters, parts.architecture)
    before = _fingerprint(parts.parameters)
    torch.manual_seed(0)
    ids = torch.randint(0, 100, (1, 77))
    reference = [te(ids).last_hidden_state for te in views.text_encoders]
    host_storages = {_storage(t) for t in parts.parameters.values()}
    placement = ViewPlacement(views, parts.parameters, FAKE_GPU)
    for component, modules in (("vae", [views.vae]), ("text_encoders", views.text_encoders), ("unet", [views.unet])):
        placement.to_device(component)
        assert not any(_storage(p) in host_storages for m in modules for p in m.parameters()), component
    if parts.architecture == "sdxl":  # OpenCLIP q/k/v: three slices of one device copy of in_proj_weight
        attn = views.text_encoders[1].text_model.encoder.layers[0].self_attn
        assert _storage(attn.q_proj.weight) == _storage(attn.k_proj.weight) == _storage(attn.v_proj.weight)
    again = [te(ids).last_hidden_state for te in views.text_encoders]
    assert all(torch.equal(a, b) for a, b in zip(reference, again))
    placement.restore()
    assert placement.events[-3:] == [("offload", "unet"), ("offload", "vae"), ("offload", "text_encoders")]
    for module in [views.unet, views.vae, *views.text_encoders]:
        assert all(_storage(p) in host_storages for p in module.parameters())
    assert _fingerprint(parts.parameters) == before


def test_same_device_reads_indices():
    assert same_device(torch.device("cpu"), torch.device("cpu", 0))
    assert not same_device(torch.device("cpu"), FAKE_GPU)
    assert not same_device(torch.device("cpu"), torch.device("meta"))


def test_cached_text_encoder_outputs_train_the_same(tmp_path, tiny_sd15_path):
    from lora_bakery.trainer.saving import load_network

    data = make_toy_dataset(tmp_path / "data", count=3, repeats=1)
    parts = load_checkpoint(tiny_sd15_path)
    net = {"train_text_encoder": False}
    plain = train(_config(data, tmp_path / "a", net), parts)
    cached = train(_config(data, tmp_path / "b", net, cache_text_encoder_outputs=True), parts)
    assert any("text-encoder outputs cached for 1 distinct captions" in m for m in cached.messages)
    assert cached.losses == pytest.approx(plain.losses, rel=1e-5)
    a, b = load_network(plain.final)[0], load_network(cached.final)[0]
    assert all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-6) for k in a)


@pytest.mark.parametrize("network,general,named", [
    ({}, {}, "network.train_text_encoder"),
    ({"train_text_encoder": False}, {"shuffle_caption": True, "caption_tag_dropout_rate": 0.1},
     "shuffle_caption, caption_tag_dropout_rate in 1_sks"),
    ({"train_text_encoder": False}, {"token_warmup_step": 2}, "token_warmup_step in 1_sks"),
])
def test_cached_text_encoder_outputs_refused_with_varying_captions(tmp_path, tiny_sd15_path, network, general, named):
    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    config = _config(data, tmp_path / "out", network, general, cache_text_encoder_outputs=True)
    with pytest.raises(TrainError) as info:
        train(config, load_checkpoint(tiny_sd15_path))
    assert info.value.reason == "config" and named in str(info.value)
    assert "training.cache_text_encoder_outputs" in str(info.value)


class _Fp8Watch(TrainCallbacks):
    def __init__(self, views, parameters):
        self.views, self.parameters = views, parameters
        self.seen: list[tuple] = []

    def on_step_end(self, info) -> None:
        unet = self.views.unet
        linears = [m for m in unet.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        norms = [m for m in unet.modules() if isinstance(m, torch.nn.GroupNorm)]
        adapters = {p.dtype for p in info.network.parameters()}
        self.seen.append(({m.weight.dtype for m in linears}, {m.weight.dtype for m in norms}, adapters))


@pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="torch without float8")
def test_fp8_base_trains_on_fp8_weights_and_leaves_the_host_bitwise_unchanged(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    parts = load_checkpoint(tiny_sd15_path)
    before = _fingerprint(parts.parameters)
    views = build_views(parts.parameters, parts.architecture)
    watch = _Fp8Watch(views, parts.parameters)
    ref = train(_config(data, tmp_path / "bf16", mixed_precision="bf16"), parts)
    result = Run(_config(data, tmp_path / "fp8", mixed_precision="bf16", fp8_base=True), parts, QuietProgress(), None,
                 watch, views)()
    assert result.status == "finished"
    assert watch.seen and all(s == ({torch.float8_e4m3fn}, {torch.float32}, {torch.float32}) for s in watch.seen)
    assert any("fp8_base" in m and "not changed" in m for m in result.messages)
    assert all(torch.isfinite(torch.tensor(result.losses)))
    assert result.losses == pytest.approx(ref.losses, rel=0.1)
    assert _fingerprint(parts.parameters) == before  # same objects, storage, dtype, device and bytes
    assert all(p.dtype == torch.float32 for p in views.unet.parameters())  # views back on the host tensors


def test_fp8_base_refused_without_mixed_precision(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    parts = load_checkpoint(tiny_sd15_path)
    before = _fingerprint(parts.parameters)
    with pytest.raises(TrainError, match="training.fp8_base needs mixed precision") as info:
        train(_config(data, tmp_path / "out", fp8_base=True), parts)
    assert info.value.reason == "config"
    assert _fingerprint(parts.parameters) == before


def test_fp8_parks_a_host_tensor_that_lives_on_the_device_and_puts_it_back(tiny_sd15_path):
    """The no-medvram path: the host's U-Net is where training runs, so its tensors go to a CPU backup
    for the run (on the CPU the backup is the original itself) and come back exactly."""
    from lora_bakery.trainer.fp8 import fp8_keys

    parts = load_checkpoint(tiny_sd15_path)
    views = build_views(parts.parameters, parts.architecture)
    before = _fingerprint(parts.parameters)
    keys = fp8_keys(views)
    assert keys and all(k.startswith("model.diffusion_model.") and k.endswith(".weight") for k in keys)
    placement = ViewPlacement(views, parts.parameters, torch.device("cpu"), fp8_keys=keys)
    placement.to_device("unet")
    assert views.unet.conv_in.weight.dtype == torch.float8_e4m3fn
    assert views.unet.conv_in.bias.dtype == torch.float32 and views.unet.conv_norm_out.weight.dtype == torch.float32
    assert set(placement._parked) == set(keys)
    with placement.lend():  # a sample render: host and views as without fp8
        assert not placement._parked and views.unet.conv_in.weight.dtype == torch.float32
    assert set(placement._parked) == set(keys) and views.unet.conv_in.weight.dtype == torch.float8_e4m3fn
    placement.restore()
    assert not placement._parked and _fingerprint(parts.parameters) == before


@pytest.mark.skipif(not torch.cuda.is_available() or not hasattr(torch, "float8_e4m3fn"), reason="needs a CUDA GPU")
def test_fp8_base_on_cuda_parks_the_host_unet_and_gives_it_back(tmp_path, tiny_sd15_path):
    """The webui without medvram: its fp16 U-Net lives on the GPU; during the bake only the fp8 copy
    does, and afterwards every tensor is back on the GPU, same object, dtype and bytes."""
    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    parts = load_checkpoint(tiny_sd15_path)
    for tensor in parts.parameters.values():
        tensor.data = tensor.data.to("cuda", torch.float16)
    before = _fingerprint(parts.parameters, pointers=False)
    views = build_views(parts.parameters, parts.architecture)
    key = "model.diffusion_model.input_blocks.0.0.weight"

    class Watch(_Fp8Watch):
        where: list[str] = []

        def on_step_end(self, info) -> None:
            super().on_step_end(info)
            self.where.append(parts.parameters[key].device.type)

    watch = Watch(views, parts.parameters)
    result = Run(_config(data, tmp_path / "fp8", mixed_precision="bf16", fp8_base=True), parts, QuietProgress(), None,
                 watch, views)()
    assert result.status == "finished" and all(torch.isfinite(torch.tensor(result.losses)))
    assert watch.where and set(watch.where) == {"cpu"}  # the host's fp16 weight waited on the CPU
    assert all(seen[0] == {torch.float8_e4m3fn} for seen in watch.seen)
    assert _fingerprint(parts.parameters, pointers=False) == before
