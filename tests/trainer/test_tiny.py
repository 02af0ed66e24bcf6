"""Tiny checkpoints: deterministic bytes, real layout, working tokenizers."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from safetensors import safe_open
from transformers import CLIPTokenizer

from lora_bakery.trainer.models import detect_architecture, infer_configs
from lora_bakery.trainer.tiny import tiny_checkpoint, tiny_configs

EXPECTED = {"sd15": "sd1", "sdxl": "sdxl"}


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_regenerated_file_is_byte_identical(arch, tmp_path, tiny_sd15_path, tiny_sdxl_path):
    cached = tiny_sd15_path if arch == "sd15" else tiny_sdxl_path
    fresh = tiny_checkpoint(arch, tmp_path)
    assert fresh == tmp_path / "tiny" / "v1" / arch / f"tiny-{arch}.safetensors"
    assert _sha(fresh) == _sha(cached)
    assert tiny_checkpoint(arch, tmp_path) == fresh  # second call reuses the file
    assert sorted(p.name for p in fresh.parent.parent.iterdir()) == [arch]  # no staging folders left


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_file_loads_and_reads_back_its_configs(arch, tiny_sd15_path, tiny_sdxl_path):
    path = tiny_sd15_path if arch == "sd15" else tiny_sdxl_path
    with safe_open(str(path), "pt") as f:
        assert f.metadata() == {"bakery_tiny": "v1", "arch": arch}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert path.stat().st_size < 25 * 2**20
    assert detect_architecture(tensors) == EXPECTED[arch]
    assert infer_configs(tensors) == tiny_configs(arch)
    weights = [t for k, t in tensors.items() if t.is_floating_point() and k != "alphas_cumprod"]
    assert all(t.dtype == torch.float32 for t in weights)
    norms = [t for k, t in tensors.items() if k.endswith("norm1.weight") or k.endswith("ln_1.weight")]
    assert norms and all(t.std() > 0.01 for t in norms)  # norms re-initialised, not all ones


def test_sdxl_uses_open_clip_layout(tiny_sdxl_path):
    with safe_open(str(tiny_sdxl_path), "pt") as f:
        keys = set(f.keys())
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
    p = "conditioner.embedders.1.model."
    assert shapes[p + "transformer.resblocks.0.attn.in_proj_weight"] == (3 * 128, 128)
    assert shapes[p + "transformer.resblocks.2.attn.in_proj_bias"] == (3 * 128,)
    assert shapes[p + "text_projection"] == (128, 128)
    assert shapes[p + "positional_embedding"] == (77, 128)
    assert {p + "ln_final.weight", p + "token_embedding.weight"} <= keys
    assert shapes["model.diffusion_model.label_emb.0.0.weight"][1] == 128 + 6 * 32
    assert "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight" in keys
    assert shapes["first_stage_model.decoder.mid.attn_1.q.weight"] == (64, 64, 1, 1)


@pytest.mark.parametrize("folder", ["tokenizer", "tokenizer_2"])
def test_tokenizers_load_offline_and_encode(folder, tiny_sdxl_path):
    tokenizer = CLIPTokenizer.from_pretrained(str(tiny_sdxl_path.parent / folder), local_files_only=True)
    assert tokenizer.model_max_length == 77
    vocab = len(tokenizer)
    ids = tokenizer("a photo of a cat").input_ids
    assert ids[0] == vocab - 2 and ids[-1] == vocab - 1  # <|startoftext|> ... <|endoftext|>
    assert len(ids) == 7  # a, photo, of, a, cat: the merges make whole words
    assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == ["a</w>", "photo</w>", "of</w>", "a</w>", "cat</w>"]
    padded = tokenizer("a cat", padding="max_length", max_length=77).input_ids
    assert len(padded) == 77
    assert padded[-1] == (tokenizer.convert_tokens_to_ids("!") if folder == "tokenizer_2" else vocab - 1)


def test_sd15_has_one_tokenizer(tiny_sd15_path):
    assert (tiny_sd15_path.parent / "tokenizer" / "merges.txt").read_text().startswith("#version: 0.2\n")
    assert not (tiny_sd15_path.parent / "tokenizer_2").exists()


def test_concurrent_creation_is_safe(tmp_path, tiny_sd15_path):
    # Threads race through the same mkdtemp + rename steps as processes would, without the start-up cost.
    with ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(lambda _: tiny_checkpoint("sd15", tmp_path), range(3)))
    assert len(set(paths)) == 1
    assert _sha(paths[0]) == _sha(tiny_sd15_path)
    assert [p.name for p in (tmp_path / "tiny" / "v1").iterdir()] == ["sd15"]


def test_unknown_arch_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="sd15"):
        tiny_checkpoint("sd3", tmp_path)  # type: ignore[arg-type]
