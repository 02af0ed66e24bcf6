"""save_network / load_network: atomic, never overwriting, precision, hashes as kohya computes them."""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import struct

import pytest
import torch

from lora_bakery.trainer.saving import (
    file_addnet_hash,
    load_network,
    precalculate_safetensors_hashes,
    save_network,
    stringify_metadata,
)


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        "lora_unet_a.lora_down.weight": torch.randn(4, 16, generator=generator),
        "lora_unet_a.lora_up.weight": torch.randn(16, 4, generator=generator),
        "lora_unet_a.alpha": torch.tensor(2.0),
        "lora_te_b.on_input": torch.tensor(False),
    }


def _header(path) -> dict:
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length])


def test_fp16_default_and_alpha_kept(tmp_path) -> None:
    path = save_network(tmp_path / "a.safetensors", _tensors(), {"ss_output_name": "a"})
    tensors, metadata = load_network(path)
    assert tensors["lora_unet_a.lora_down.weight"].dtype == torch.float16
    assert tensors["lora_unet_a.alpha"].dtype == torch.float16 and tensors["lora_unet_a.alpha"].dim() == 0
    assert float(tensors["lora_unet_a.alpha"]) == 2.0
    assert tensors["lora_te_b.on_input"].dtype == torch.bool
    assert metadata["ss_output_name"] == "a"
    fp32, _ = load_network(save_network(tmp_path / "b.safetensors", _tensors(), precision="fp32"))
    assert torch.equal(fp32["lora_unet_a.lora_up.weight"], _tensors()["lora_unet_a.lora_up.weight"])
    bf16, _ = load_network(save_network(tmp_path / "c.safetensors", _tensors(), precision="bf16"))
    assert bf16["lora_unet_a.lora_up.weight"].dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        save_network(tmp_path / "d.safetensors", _tensors(), precision="fp8")


def test_never_overwrites_unless_asked(tmp_path) -> None:
    path = save_network(tmp_path / "a.safetensors", _tensors(0))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_network(path, _tensors(1))
    assert path.read_bytes() == before
    save_network(path, _tensors(1), overwrite=True)
    assert path.read_bytes() != before
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temporary files left


def test_disk_full_leaves_previous_file_intact(tmp_path, monkeypatch) -> None:
    path = save_network(tmp_path / "a.safetensors", _tensors(0))
    before = path.read_bytes()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        save_network(path, _tensors(1), overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]


def test_hashes_as_kohya(tmp_path) -> None:
    metadata = {"ss_output_name": "a", "ss_network_dim": "4", "modelspec.title": "ignored by the hash"}
    path = save_network(tmp_path / "a.safetensors", _tensors(), metadata, precision="fp32")
    _, saved = load_network(path)
    # addnet hash = sha256 of the tensor data after the JSON header: what A1111 computes from the file
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert (
        saved["sshs_model_hash"] == hashlib.sha256(data[8 + length :]).hexdigest() == file_addnet_hash(path)
    )
    # legacy: 64 KiB at 1 MiB of the in-memory serialisation with ss_* metadata only (empty for small files)
    assert saved["sshs_legacy_hash"] == hashlib.sha256(b"").hexdigest()[:8]
    assert precalculate_safetensors_hashes(load_network(path)[0], metadata) == (
        saved["sshs_model_hash"],
        saved["sshs_legacy_hash"],
    )


def test_legacy_hash_reads_at_one_mebibyte() -> None:
    from safetensors.torch import save

    big = {"w": torch.arange(600_000, dtype=torch.float32)}  # 2.4 MB
    data = save(big, {"ss_a": "1"})
    _, legacy = precalculate_safetensors_hashes(big, {"ss_a": "1", "other": "x"})
    assert legacy == hashlib.sha256(io.BytesIO(data).getbuffer()[0x100000:0x110000]).hexdigest()[:8]


def test_metadata_must_be_strings_and_keys_sorted(tmp_path) -> None:
    with pytest.raises(TypeError, match="ss_epoch"):
        save_network(tmp_path / "a.safetensors", _tensors(), {"ss_epoch": 3})
    path = save_network(tmp_path / "a.safetensors", _tensors(), stringify_metadata({"ss_z": 1, "ss_a": None}))
    keys = list(_header(path)["__metadata__"])
    assert keys == sorted(keys)


def test_only_safetensors(tmp_path) -> None:
    with pytest.raises(ValueError, match="safetensors"):
        save_network(tmp_path / "a.pt", _tensors())
    (tmp_path / "a.ckpt").write_bytes(b"not read")
    with pytest.raises(ValueError, match="no pickles"):
        load_network(tmp_path / "a.ckpt")
