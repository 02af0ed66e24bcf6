"""DiffusersHost on the real tiny checkpoints: load, views, generate, tokenizer discovery, refusals."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lora_bakery.extension.host.base import GenerationRequest, HostError, LoraSpec, NullProgress
from lora_bakery.extension.host.diffusers_host import DiffusersHost


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """No tokenizer can come from the Hugging Face cache."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    for var in ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE"):
        monkeypatch.setenv(var, str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_model_and_views_share_the_loaded_tensors(arch, request):
    path = request.getfixturevalue(f"tiny_{arch}_path")
    host = DiffusersHost(path, device="cpu")
    parts = host.model()
    assert parts.architecture == ("sdxl" if arch == "sdxl" else "sd1")
    assert len(parts.tokenizers) == (2 if arch == "sdxl" else 1)
    views = host.views()
    host_ptrs = {t.untyped_storage().data_ptr() for t in parts.parameters.values()}
    modules = [views.unet, views.vae, *views.text_encoders]
    params = [p for m in modules for p in m.parameters()]
    assert params and all(p.untyped_storage().data_ptr() in host_ptrs for p in params)
    assert views.report.shared == views.report.total == len(params)


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_generate_is_seeded_and_reports_progress(arch, request):
    host = DiffusersHost(request.getfixturevalue(f"tiny_{arch}_path"), device="cpu")
    req = GenerationRequest(prompt="a photo of a cat", negative_prompt="blurry", seed=7, width=64, height=64, steps=3)
    progress = NullProgress()
    first = host.generate([req], progress)
    second = host.generate([req])
    assert len(first) == 1 and first[0].seed == 7
    assert first[0].image.size == (64, 64)
    assert progress.total == 3 and progress.done == 3
    a, b = np.asarray(first[0].image), np.asarray(second[0].image)
    assert np.array_equal(a, b), "same seed must give the same image"
    other = host.generate([GenerationRequest(prompt="a photo of a cat", seed=8, width=64, height=64, steps=3)])
    assert not np.array_equal(a, np.asarray(other[0].image))
    assert "Seed: 7" in first[0].infotext and "Negative prompt: blurry" in first[0].infotext


def test_generate_stops_when_interrupted(tiny_sd15_path):
    host = DiffusersHost(tiny_sd15_path, device="cpu")
    progress = NullProgress()
    progress.interrupt()
    assert host.generate([GenerationRequest(prompt="x", width=64, height=64, steps=2)], progress) == []


def test_generate_refuses_loras_and_unknown_samplers(tiny_sd15_path):
    host = DiffusersHost(tiny_sd15_path, device="cpu")
    with pytest.raises(HostError, match="LoRA"):
        host.generate([GenerationRequest(prompt="x", loras=[LoraSpec(path="a.safetensors")])])
    with pytest.raises(HostError, match="Unknown sampler"):
        host.generate([GenerationRequest(prompt="x", width=64, height=64, steps=1, sampler="Nope")])


def test_missing_tokenizer_says_where_it_looked(tiny_sd15_path, tmp_path, empty_hf_cache):
    lonely = tmp_path / "alone" / "model.safetensors"
    lonely.parent.mkdir()
    shutil.copy(tiny_sd15_path, lonely)
    with pytest.raises(HostError) as info:
        DiffusersHost(lonely, device="cpu").model()
    msg = str(info.value)
    assert str(lonely.parent / "tokenizer") in msg
    assert "openai/clip-vit-large-patch14" in msg and "--tokenizer" in msg
    # Naming the folder fixes it.
    host = DiffusersHost(lonely, tokenizer_dir=tiny_sd15_path.parent / "tokenizer", device="cpu")
    assert host.model().architecture == "sd1"


def test_sdxl_second_tokenizer_falls_back_to_the_first(tiny_sdxl_path, tmp_path, empty_hf_cache):
    folder = tmp_path / "xl"
    folder.mkdir()
    shutil.copy(tiny_sdxl_path, folder / "m.safetensors")
    shutil.copytree(tiny_sdxl_path.parent / "tokenizer", folder / "tokenizer")
    tok1, tok2 = DiffusersHost(folder / "m.safetensors", device="cpu").model().tokenizers
    assert tok2.pad_token == "!"
    assert tok1("a cat").input_ids == tok2("a cat").input_ids


def test_refuses_pickles_and_corrupt_files(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not a pickle")
    with pytest.raises(HostError, match="only .safetensors"):
        DiffusersHost(ckpt).model()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(HostError, match="not a readable safetensors"):
        DiffusersHost(bad).model()
    with pytest.raises(HostError, match="not found"):
        DiffusersHost(tmp_path / "missing.safetensors").model()
