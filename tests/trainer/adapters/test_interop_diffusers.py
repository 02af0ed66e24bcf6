"""(a) Files of the kinds diffusers reads, loaded by ``pipe.load_lora_weights``, reproduce our adapted model.

Standalone environment only: diffusers 0.31 beside transformers 4.30 (A1111's pins) has no peft
backend, so ``load_lora_weights`` refuses there (reference/env-probe.md §8).
"""

from __future__ import annotations

import pytest
import torch

from lora_bakery.trainer.adapters import ADAPTERS, create_network
from lora_bakery.trainer.models import build_views
from lora_bakery.trainer.saving import save_network

from .helpers import ARCHS, checkpoint_state, model_inputs, model_outputs, options_for, randomize, rel_error

diffusers = pytest.importorskip("diffusers")
try:
    from diffusers.utils import USE_PEFT_BACKEND
except ImportError:  # pragma: no cover
    USE_PEFT_BACKEND = False

pytestmark = pytest.mark.skipif(not USE_PEFT_BACKEND, reason="diffusers has no peft backend here")

LOADABLE = sorted(name for name, kind in ADAPTERS.items() if kind.diffusers_loadable)


def _pipeline(views, arch: str):
    from diffusers import DDIMScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline

    scheduler = DDIMScheduler(steps_offset=1, clip_sample=False)
    if arch == "sdxl":
        te1, te2 = views.text_encoders
        return StableDiffusionXLPipeline(
            vae=views.vae,
            text_encoder=te1,
            text_encoder_2=te2,
            tokenizer=None,
            tokenizer_2=None,
            unet=views.unet,
            scheduler=scheduler,
        )
    return StableDiffusionPipeline(
        vae=views.vae,
        text_encoder=views.text_encoders[0],
        tokenizer=None,
        unet=views.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@pytest.mark.parametrize("kind", LOADABLE)
@pytest.mark.parametrize("arch", ARCHS)
def test_diffusers_load_lora_weights_reproduces_adapted_model(arch: str, kind: str, tmp_path) -> None:
    state = checkpoint_state(arch)
    views = build_views(state)
    inputs = model_inputs(views)
    network = create_network(views, kind, options_for(kind))
    randomize(network)
    network.eval()  # inference: no dropout, DyLoRA uses every rank
    with network.applied_to_model():
        ours = model_outputs(views, inputs)
    path = save_network(tmp_path / f"{kind}.safetensors", network, precision="fp32")

    fresh = build_views(state)
    base = model_outputs(fresh, inputs)
    pipe = _pipeline(fresh, arch)
    pipe.load_lora_weights(str(tmp_path), weight_name=path.name, adapter_name="bakery")
    with torch.no_grad():
        theirs = model_outputs(fresh, inputs)
    for key, value in theirs.items():
        assert rel_error(value, ours[key]) < 1e-4, key
        assert rel_error(base[key], ours[key]) > 1e-3, f"{key}: the delta does not matter"
