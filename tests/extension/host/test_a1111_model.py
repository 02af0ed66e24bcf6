"""A1111Host.model() over the faithful fake webui: live Parameters under checkpoint keys."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from lora_bakery.extension.host.a1111 import A1111Host
from lora_bakery.extension.host.base import Host, HostError
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.sd_model import is_buffer
from tests.fakes.webui import installed_fake_webui


@pytest.fixture
def fake_webui():
    with installed_fake_webui() as webui:
        yield webui

ARCHS = [("sd15", "sd1"), ("sdxl", "sdxl")]


def _weight_keys(path) -> set[str]:
    return {k for k, v in load_file(str(path)).items() if not is_buffer(k, v)}


def test_host_satisfies_protocol_and_imports_without_webui():
    host = A1111Host()
    assert isinstance(host, Host) and host.name == "a1111"


@pytest.mark.parametrize("tiny,arch", ARCHS)
def test_model_keys_are_checkpoint_keys_and_the_same_tensor_objects(fake_webui, tiny, arch):
    ckpt = tiny_checkpoint(tiny)
    sd_model = fake_webui.load(ckpt, arch)
    parts = A1111Host().model()

    assert parts.architecture == arch and parts.prediction == "eps"
    assert set(parts.parameters) == _weight_keys(ckpt)
    extras = set(load_file(str(ckpt))) - set(parts.parameters)
    assert all("." not in k or k.endswith("position_ids") for k in extras), extras  # buffers only
    live = dict(sd_model.named_parameters())
    assert len(parts.parameters) == len(live)
    live_ids = {id(p) for p in live.values()}
    assert all(id(t) in live_ids for t in parts.parameters.values())  # the very objects, not copies
    if arch == "sd1":
        key = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"
        assert parts.parameters[key] is live["cond_stage_model.wrapped.transformer.text_model.embeddings.token_embedding.wrapped.weight"]
    else:
        key = "conditioner.embedders.1.model.token_embedding.weight"
        assert parts.parameters[key] is live["conditioner.embedders.1.wrapped.model.token_embedding.wrapped.weight"]
        assert not any(k.startswith("cond_stage_model.") for k in parts.parameters)
    unet = parts.parameters["model.diffusion_model.input_blocks.0.0.weight"]
    assert unet.data_ptr() == live["model.diffusion_model.input_blocks.0.0.weight"].data_ptr()


def test_model_reports_tokenizers_checkpoint_and_clip_skip(fake_webui):
    ckpt = tiny_checkpoint("sdxl")
    fake_webui.load(ckpt, "sdxl", parameterization="v", sha256="ab" * 32, legacy_hash="1234abcd")
    fake_webui.shared.opts.CLIP_stop_at_last_layers = 2
    parts = A1111Host().model()
    assert parts.prediction == "v"
    assert parts.checkpoint_name == ckpt.name and parts.checkpoint_path == str(ckpt)
    assert parts.checkpoint_hash == "ab" * 32 and parts.legacy_hash == "1234abcd"
    assert parts.clip_skip == 2
    first, second = parts.tokenizers
    assert first is fake_webui.shared.sd_model.conditioner.embedders[0].wrapped.tokenizer
    assert second.pad_token == "!" and first.pad_token != "!"
    assert second("a cat").input_ids == first("a cat").input_ids  # same BPE


def test_model_uses_cached_sha256_when_info_has_none(fake_webui):
    ckpt = tiny_checkpoint("sd15")
    fake_webui.load(ckpt, "sd1")
    fake_webui.hashes.cache[f"checkpoint/{ckpt.name}"] = "cd" * 32
    parts = A1111Host().model()
    assert parts.checkpoint_hash == "cd" * 32
    assert parts.tokenizers == [fake_webui.shared.sd_model.cond_stage_model.wrapped.tokenizer]


def test_model_errors_are_readable(fake_webui):
    host = A1111Host()
    with pytest.raises(HostError, match="No checkpoint is loaded"):
        host.model()
    model = fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    model.is_sd3 = True
    with pytest.raises(HostError, match="SD3"):
        host.model()


@pytest.mark.parametrize("tiny,arch", ARCHS)
def test_build_views_shares_every_parameter_with_the_live_model(fake_webui, tiny, arch):
    from lora_bakery.trainer.models import build_views

    sd_model = fake_webui.load(tiny_checkpoint(tiny), arch)
    flags_before = [p.requires_grad for p in sd_model.parameters()]
    views = build_views(A1111Host().model().parameters, arch)
    host_storages = {p.untyped_storage().data_ptr() for p in sd_model.parameters()}
    modules = [views.unet, views.vae, *views.text_encoders]
    view_params = [p for m in modules for p in m.parameters()]
    assert view_params and views.report.copied == []
    assert views.report.shared == views.report.total == len(view_params)
    assert all(p.untyped_storage().data_ptr() in host_storages for p in view_params)
    # building views does not touch the host's flags (the UNet keeps requires_grad=True)
    assert [p.requires_grad for p in sd_model.parameters()] == flags_before
    assert any(flags_before) and isinstance(views.unet, torch.nn.Module)


def test_model_under_medvram_carries_the_webui_placement(fake_webui):
    from lora_bakery.extension.host.a1111_placement import A1111Placement

    model = fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    assert A1111Host().model().placement is None
    fake_webui.shared.cmd_opts.medvram = True
    fake_webui.lowvram.apply(model)
    parts = A1111Host().model()
    assert isinstance(parts.placement, A1111Placement) and parts.placement.description == "--medvram"
    assert parts.placement.device == fake_webui.devices.device
