"""Baking block weights (exact, linear, never overwriting) and per-block ‖ΔW‖ against direct computation."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from lora_bakery.extension.compare import bake_block_weights, block_norms, list_epochs, plot_block_norms
from lora_bakery.extension.compare.presets import DEFAULT_PRESETS
from lora_bakery.extension.host.base import GenerationRequest, LoraSpec
from lora_bakery.extension.host.diffusers_lora import FileNetworks
from lora_bakery.extension.host.lora_blocks import BLOCKID26, layer_block
from lora_bakery.trainer.saving import load_network


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_epochs_are_listed_in_order_with_metadata(locon_run):
    files = list_epochs(locon_run[0].parent)
    assert [f.path for f in files] == locon_run
    assert [(f.epoch, f.final) for f in files] == [(1, False), (2, False), (3, True)]
    assert files[-1].label == "final (e3)" and files[0].summary()["network"].startswith("networks.lora 4/")


def test_bake_all_ones_keeps_every_tensor_and_never_touches_the_original(locon_run, tmp_path):
    source = locon_run[-1]
    before = _sha(source)
    result = bake_block_weights(source, [1.0] * 26, tmp_path / "ones.safetensors", label="ALL26")
    original, _ = load_network(source)
    baked, meta = load_network(result.path)
    assert set(baked) == set(original)
    assert all(torch.equal(baked[k], original[k]) and baked[k].dtype == original[k].dtype for k in original)
    assert _sha(source) == before
    record = json.loads(meta["bakery_block_weights"])
    assert record["weights26"] == [1.0] * 26 and record["source"] == source.name
    assert meta["ss_output_name"] == "ones" and meta["sshs_model_hash"]
    with pytest.raises(FileExistsError):
        bake_block_weights(source, [1.0] * 26, result.path)
    with pytest.raises(ValueError, match="new file"):
        bake_block_weights(source, [1.0] * 26, source, overwrite=True)


def test_bake_rebase_and_drop(locon_run, tmp_path):
    source = locon_run[-1]
    original, _ = load_network(source)
    ins = DEFAULT_PRESETS["INS"]
    result = bake_block_weights(source, ins, tmp_path / "ins.safetensors", rebase_from=1.0, rebase_to=0.5,
                                drop_zero_blocks=True)
    baked, _ = load_network(result.path)
    assert result.dropped_layers > 0 and result.rebase == 0.5
    kept = {k.partition(".")[0] for k in baked}
    assert {layer_block(k) for k in kept} <= {"BASE", "IN01", "IN02", "IN04"}
    key = next(k for k in baked if k.endswith("lora_up.weight") and "down_blocks_0_attentions_0" in k)
    assert torch.allclose(baked[key], original[key] * 0.5)
    down = key.replace("lora_up", "lora_down")
    assert torch.equal(baked[down], original[down])  # only the up factor changes (linear, not r²)


def test_baked_preset_equals_generation_with_the_same_block_weights(sd15_host, locon_run, tmp_path, host_hash):
    source = str(locon_run[-1])
    digest = host_hash()
    preset = DEFAULT_PRESETS["MIDD"]
    baked = bake_block_weights(source, preset, tmp_path / "midd.safetensors").path
    views = sd15_host.views()
    # U-Net and text-encoder outputs, fp32: block weights at run time vs the baked file at weight 0.8
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=gen)
    context = torch.randn(1, 8, views.configs.unet["cross_attention_dim"], generator=gen)
    ids = torch.randint(0, 400, (1, 6), generator=gen)
    outputs = []
    networks = FileNetworks()
    for spec in (LoraSpec(source, te=0.8, block_weights=preset), LoraSpec(str(baked), te=0.8)):
        network = networks.network(views, spec)
        with network.applied_to_model(), torch.no_grad():
            unet = views.unet(sample, torch.tensor([500]), encoder_hidden_states=context).sample
            text = views.text_encoders[0](ids)[0]
        outputs.append((unet, text))
    assert (outputs[0][0] - outputs[1][0]).abs().max() <= 1e-5
    assert (outputs[0][1] - outputs[1][1]).abs().max() <= 1e-5
    # and whole images from the host, same seed
    req = dict(prompt="a cat", seed=3, width=64, height=64, steps=2)
    a = sd15_host.generate([GenerationRequest(**req, loras=[LoraSpec(source, te=0.8, block_weights=preset)])])[0]
    b = sd15_host.generate([GenerationRequest(**req, loras=[LoraSpec(str(baked), te=0.8)])])[0]
    c = sd15_host.generate([GenerationRequest(**req, loras=[LoraSpec(source, te=0.8)])])[0]
    diff = np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(b.image, dtype=np.int16)).max()
    assert diff <= 1
    assert np.abs(np.asarray(a.image, dtype=np.int16) - np.asarray(c.image, dtype=np.int16)).max() > 1
    assert host_hash() == digest  # LoRAs never wrote the host's tensors


def test_block_norms_equal_a_direct_computation(locon_run, tmp_path):
    norms = block_norms(locon_run, labels=["e1", "e2", "e3"])
    expected: dict[str, list[float]] = {}
    for column, path in enumerate(locon_run):
        tensors, _ = load_network(path)
        for key in tensors:
            if not key.endswith("lora_up.weight"):
                continue
            layer = key.partition(".")[0]
            up = tensors[key].double().flatten(1)
            down = tensors[f"{layer}.lora_down.weight"].double().flatten(1)
            delta = up @ down * float(tensors[f"{layer}.alpha"]) / down.shape[0]
            row = expected.setdefault(layer_block(layer), [0.0] * len(locon_run))
            row[column] += float(delta.norm())
    assert norms.blocks == [b for b in BLOCKID26 if b in expected]
    for block, row in zip(norms.blocks, norms.values):
        assert row == pytest.approx(expected[block], rel=1e-4)
    assert all(r[0] < r[1] < r[2] for r in norms.values)  # the synthetic run grows
    png = plot_block_norms(norms, tmp_path / "norms.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
