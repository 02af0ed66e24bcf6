"""(b) Every kind we save, merged by the A1111 reference loader, reproduces our in-memory adapted model.

For each architecture and kind: random non-zero adapter weights, te/unet multipliers split
(0.7 / 1.3, as ``<lora:name:0.7:1.3>``), outputs of the adapted views; then the saved file (fp32)
goes through ``tests.reference_loader.merge_network`` onto the LDM/SGM checkpoint, views are
rebuilt from the merged tensors, and the U-Net and text encoder outputs must agree within 1e-4.
"""

from __future__ import annotations

import pytest
import torch

from lora_bakery.trainer.adapters import create_network
from lora_bakery.trainer.models import build_views
from lora_bakery.trainer.saving import load_network, save_network
from tests.reference_loader import merge_network

from .helpers import (
    ARCHS,
    KINDS,
    checkpoint_state,
    model_inputs,
    model_outputs,
    options_for,
    randomize,
    rel_error,
)

TE, UNET = 0.7, 1.3


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_reference_loader_reproduces_adapted_model(arch: str, kind: str, tmp_path) -> None:
    state = checkpoint_state(arch)
    views = build_views(state)
    inputs = model_inputs(views)
    base = model_outputs(views, inputs)

    network = create_network(views, kind, options_for(kind))
    randomize(network)
    network.eval()  # inference: no dropout, DyLoRA uses every rank
    network.set_multiplier(TE, UNET)
    with network.applied_to_model():
        ours = model_outputs(views, inputs)

    path = save_network(tmp_path / f"{kind}.safetensors", network, precision="fp32")
    tensors, _ = load_network(path)
    merged, loaded, errors = merge_network(state, tensors, TE, UNET)
    assert loaded.unmatched == []
    assert errors == []
    assert len(loaded.modules) == len(network.adapters)
    reference = model_outputs(build_views(merged), inputs)

    for key, value in reference.items():
        assert rel_error(ours[key], value) < 1e-4, key
        if not key.endswith("_hidden") or arch == "sd15" or key != "te1_hidden":
            assert rel_error(base[key], value) > 1e-3, f"{key}: the {kind} delta does not matter"


@pytest.mark.parametrize("arch", ARCHS)
def test_unet_only_network_leaves_text_encoders_out(arch: str) -> None:
    views = build_views(checkpoint_state(arch))
    network = create_network(views, "lora", options_for("lora"), train_text_encoder=False)
    assert network.count(text_encoder=True) == 0
    assert all(name.startswith("lora_unet_") for name in network.kohya_state_dict())


def test_zero_multiplier_is_the_base_model() -> None:
    views = build_views(checkpoint_state("sd15"))
    inputs = model_inputs(views)
    base = model_outputs(views, inputs)
    network = create_network(views, "loha", options_for("loha"))
    randomize(network)
    network.set_multiplier(0.0)
    with network.applied_to_model():
        out = model_outputs(views, inputs)
    for key in base:
        assert torch.equal(out[key], base[key]), key
