"""A1111Host.generate() over the fake webui: fields, seeds, LoRA syntax, weights restored after."""

from __future__ import annotations

import sys
import threading

import pytest
import torch
from safetensors.torch import save_file

from lora_bakery.extension.host.a1111 import A1111Host
from lora_bakery.extension.host.base import GenerationRequest, HostError, LoraSpec, NullProgress
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.webui import installed_fake_webui


@pytest.fixture
def fake_webui():
    with installed_fake_webui() as webui:
        yield webui


@pytest.fixture
def webui(fake_webui):
    fake_webui.load(tiny_checkpoint("sd15"), "sd1")
    return fake_webui


def _lora(path, output_name="my lora"):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"lora_unet_x.lora_down.weight": torch.zeros(1, 4)}, str(path),
              metadata={"ss_output_name": output_name, "ss_base_model_version": "sd_v1"})
    return path


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_generate_passes_every_field_and_maps_the_result(webui):
    req = GenerationRequest(prompt="a cat", negative_prompt="blurry", seed=1234, width=96, height=64, steps=7,
                            cfg_scale=5.5, sampler="Euler a", batch_size=2)
    images = A1111Host().generate([req])
    call = webui.processing.calls[0]
    assert call["prompt"] == "a cat" and call["negative_prompt"] == "blurry"
    assert (call["seed"], call["width"], call["height"], call["steps"]) == (1234, 96, 64, 7)
    assert (call["cfg_scale"], call["sampler_name"], call["batch_size"], call["n_iter"]) == (5.5, "Euler a", 2, 1)
    assert call["do_not_save_samples"] and call["do_not_save_grid"] and call["sd_model_is_shared"]
    assert call["queue_lock_held"] and not call["cached_c_is_class_cache"]  # fresh conditioning cache
    assert [g.seed for g in images] == [1234, 1235]
    first = images[0]
    assert first.image.size == (96, 64) and (first.width, first.height) == (96, 64)
    assert (first.prompt, first.negative_prompt, first.steps, first.cfg_scale, first.sampler) == ("a cat", "blurry", 7, 5.5, "Euler a")
    assert "Seed: 1234" in first.infotext and "Seed: 1235" in images[1].infotext
    assert not webui.call_queue.queue_lock.locked()


def test_random_seed_reports_the_seed_actually_used_and_is_reproducible(webui):
    host = A1111Host()
    (first,) = host.generate([GenerationRequest(prompt="dog", seed=-1, width=32, height=32, steps=1)])
    assert first.seed >= 0 and webui.processing.calls[0]["seed"] == -1
    (again,) = host.generate([GenerationRequest(prompt="dog", seed=first.seed, width=32, height=32, steps=1)])
    assert again.image.tobytes() == first.image.tobytes()
    assert first.sampler  # the webui's default sampler is reported when none was asked for


def test_lora_syntax_te_and_unet_multipliers(webui, tmp_path):
    a = _lora(tmp_path / "out" / "epoch-000002.safetensors")
    b = _lora(tmp_path / "other dir" / "b:weird name.safetensors", output_name="a_user_lora")
    host = A1111Host()
    host.generate([GenerationRequest(prompt="cat", steps=1, width=32, height=32,
                                     loras=[LoraSpec(str(a), te=0.5), LoraSpec(str(b), te=0.25, unet=1.0)])])
    call = webui.processing.calls[0]
    tags = call["prompt"].split(" ", 1)[1].split(" ")
    assert call["prompt"].startswith("cat <lora:bakery_epoch-000002_")
    assert tags[0].endswith(":0.5>") and tags[1].endswith(":0.25:1>")
    assert tags[1].startswith("<lora:bakery_b_weird_name_")
    assert call["missing_loras"] == []
    assert [(name.split("_")[0], te, unet, path) for name, te, unet, path in call["loras"]] == [
        ("bakery", 0.5, 0.5, str(a)), ("bakery", 0.25, 1.0, str(b))]


def test_lora_weights_apply_during_generation_and_are_restored_after(webui, tmp_path):
    model = webui.shared.sd_model
    clean = _state(model)
    checksum_clean = float(sum(p.detach().double().sum() for p in model.parameters()))
    lora = _lora(tmp_path / "l.safetensors")
    host = A1111Host()
    host.generate([GenerationRequest(prompt="cat", steps=1, width=32, height=32, loras=[LoraSpec(str(lora), te=1.0)])])
    assert webui.processing.calls[0]["weights_checksum_during"] != pytest.approx(checksum_clean)
    now = model.state_dict()
    assert all(torch.equal(now[k], v) for k, v in clean.items())
    assert webui.networks.loaded_networks == []
    assert not any(k.startswith("bakery_") for k in webui.networks.available_networks)
    assert not any(k.startswith("bakery_") for k in webui.networks.available_network_aliases)
    # flags survive too (in-place restores of requires_grad params under no_grad)
    assert any(p.requires_grad for p in model.parameters())


def test_rebaked_file_under_the_same_name_is_reloaded(webui, tmp_path):
    import os
    import time

    lora = _lora(tmp_path / "e.safetensors")
    host = A1111Host()
    req = GenerationRequest(prompt="cat", steps=1, width=32, height=32, loras=[LoraSpec(str(lora))])
    host.generate([req])
    _lora(lora)  # the next epoch overwrites the file
    later = time.time() + 5
    os.utime(lora, (later, later))
    host.generate([req])
    assert webui.networks.loaded_files == [str(lora), str(lora)]


def test_generate_refuses_what_it_cannot_do(webui, tmp_path):
    host = A1111Host()
    lora = _lora(tmp_path / "l.safetensors")
    with pytest.raises(HostError, match="12, 17, 20 or 26"):
        host.generate([GenerationRequest(prompt="x", loras=[LoraSpec(str(lora), block_weights=[1.0] * 5)])])
    assert not any(k.startswith("bakery_") for k in webui.networks.networks_in_memory)
    with pytest.raises(HostError, match="not found"):
        host.generate([GenerationRequest(prompt="x", loras=[LoraSpec(str(tmp_path / "missing.safetensors"))])])
    saved = sys.modules.pop("networks"), sys.modules.pop("network")
    try:
        with pytest.raises(HostError, match="Lora extension"):
            host.generate([GenerationRequest(prompt="x", loras=[LoraSpec(str(lora))])])
        assert len(host.generate([GenerationRequest(prompt="x", steps=1, width=32, height=32)])) == 1  # no LoRA: fine
    finally:
        sys.modules["networks"], sys.modules["network"] = saved
    assert not webui.call_queue.queue_lock.locked()


def test_progress_one_step_per_request_and_interrupt_between_requests(webui):
    host = A1111Host()
    progress = NullProgress()
    reqs = [GenerationRequest(prompt=f"p{i}", seed=i, steps=2, width=32, height=32) for i in range(3)]
    assert len(host.generate(reqs, progress)) == 3
    assert (progress.total, progress.done) == (3, 3)

    class StopAfterOne(NullProgress):
        def step(self, n=1, text=None):
            super().step(n, text)
            self.interrupt()

    stopper = StopAfterOne()
    assert [g.prompt for g in host.generate(reqs, stopper)] == ["p0"]


def test_generate_keeps_the_outer_jobs_counters(webui):
    """A reg-image job counts its own steps; nested process_images must not advance them."""
    host = A1111Host()
    state = webui.state

    def handler(id_task):
        state.job_count, state.job_no = 10, 4
        host.generate([GenerationRequest(prompt="x", steps=3, width=32, height=32)], NullProgress())
        return [str(state.job_no), str(state.sampling_step)]

    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("r", host.gpu_call(handler)("task(r)")), daemon=True)
    thread.start()
    thread.join(15)
    assert out["r"][0] == "4" and out["r"][1].startswith("0")


def test_generate_without_model_is_a_host_error(fake_webui):
    with pytest.raises(HostError, match="No checkpoint"):
        A1111Host().generate([GenerationRequest(prompt="x")])
    assert not fake_webui.call_queue.queue_lock.locked()


def _two_block_lora(path, model, seed=0):
    """A LoRA with one layer in IN01 (U-Net), one in OUT03 and one text-encoder layer (BASE)."""
    gen = torch.Generator().manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer, a1111_name in {
        "lora_unet_input_blocks_1_1_proj_in": "diffusion_model_input_blocks_1_1_proj_in",
        "lora_unet_output_blocks_3_1_proj_in": "diffusion_model_output_blocks_3_1_proj_in",
        "lora_te_text_model_encoder_layers_0_self_attn_q_proj": "transformer_text_model_encoder_layers_0_self_attn_q_proj",
    }.items():
        shape = model.network_layer_mapping[a1111_name].weight.shape
        tail = tuple(shape[2:])
        tensors[f"{layer}.lora_down.weight"] = torch.randn(2, shape[1], *tail, generator=gen)
        tensors[f"{layer}.lora_up.weight"] = torch.randn(shape[0], 2, *[1] * len(tail), generator=gen)
        tensors[f"{layer}.alpha"] = torch.tensor(1.0)
    save_file(tensors, str(path), metadata={"ss_base_model_version": "sd_v1"})
    return path


def _delta_during(webui, host, lora, blocks, te=1.0):
    clean = float(sum(p.detach().double().sum() for p in webui.shared.sd_model.parameters()))
    host.generate([GenerationRequest(prompt="cat", steps=1, width=32, height=32,
                                     loras=[LoraSpec(str(lora), te=te, block_weights=blocks)])])
    return webui.processing.calls[-1]["weights_checksum_during"] - clean


def test_block_weights_scale_each_block_for_the_generation_only(webui, tmp_path):
    model = webui.shared.sd_model
    assert "diffusion_model_input_blocks_1_1_proj_in" in model.network_layer_mapping  # named as A1111 does
    lora = _two_block_lora(tmp_path / "outside" / "blocks.safetensors", model)
    clean = _state(model)
    host = A1111Host()
    full = _delta_during(webui, host, lora, None)
    ones = _delta_during(webui, host, lora, [1.0] * 17)
    half = _delta_during(webui, host, lora, [0.5] * 26)
    zero = _delta_during(webui, host, lora, [0.0] * 12)
    assert full != pytest.approx(0.0, abs=1e-6)
    assert ones == pytest.approx(full, rel=1e-6) and half == pytest.approx(full / 2, rel=1e-5)
    assert zero == pytest.approx(0.0, abs=1e-5)
    # per block: BASE only, IN01 only, OUT03 only (17-value order: BASE, IN01, IN02, IN04, ..., OUT03, ...)
    base_only = _delta_during(webui, host, lora, [1.0] + [0.0] * 16)
    in01_only = _delta_during(webui, host, lora, [0.0, 1.0] + [0.0] * 15)
    out03_only = _delta_during(webui, host, lora, [0.0] * 8 + [1.0] + [0.0] * 8)
    assert base_only + in01_only + out03_only == pytest.approx(full, rel=1e-5)
    assert min(abs(base_only), abs(in01_only), abs(out03_only)) > 1e-6
    # the block-scaled copies were private: nothing registered, cached or merged afterwards
    assert webui.networks.loaded_networks == []
    assert not any(k.startswith("bakery_") for k in webui.networks.networks_in_memory)
    assert not any(k.startswith("bakery_") for k in webui.networks.available_networks)
    assert not any(k.startswith("bakery_") for k in webui.networks.available_network_aliases)
    now = model.state_dict()
    assert all(torch.equal(now[k], v) for k, v in clean.items())
    assert not any(getattr(m, "network_current_names", ()) for m in model.modules())
    assert all(not c["cached_c_is_class_cache"] for c in webui.processing.calls)
    # the file outside the Lora folder was used where it is, and the Lora folder was not touched
    assert set(webui.networks.loaded_files) == {str(lora)}
    # different block vectors are different networks (A1111 re-merges and re-encodes the prompt)
    names = {c["loras"][0][0] for c in webui.processing.calls}
    assert len(names) == 7
