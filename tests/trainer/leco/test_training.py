"""A trained slider on the tiny SD1.5 model: the loss falls, the target moves along the slider
direction as the weight goes −2 … +2, runs repeat with a seed, the host's weights are untouched,
and the saved file reproduces the in-memory slider in A1111's loader and in diffusers.
"""

from __future__ import annotations

import pytest
import torch

from lora_bakery.trainer.leco import LecoRun, train_leco
from lora_bakery.trainer.loop.types import QuietProgress
from lora_bakery.trainer.saving import load_network, parse_metadata
from tests.reference_loader import merge_network

from .helpers import NEGATIVE, POSITIVE, TARGET, config, state_hash, tiny_host

WEIGHTS = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 20-step run, plus the loss on 4 fixed plans before (zero up-weights = base) and after."""
    host = tiny_host()
    parts = host.model()
    before_hash = state_hash(parts.parameters)
    run = LecoRun(config(tmp_path_factory.mktemp("leco")), parts, QuietProgress(), None, host.views(), None)
    result = run()
    trained_tensors = {k: v.clone() for k, v in run.network.kohya_state_dict().items()}
    plans = [run.stepper.plan(torch.Generator().manual_seed(100 + i)) for i in range(4)]

    def losses(tensors):
        run.network.load_kohya_state_dict(tensors)
        run.network.apply()
        try:
            return [run.stepper.run(p, backward=False).loss for p in plans]
        finally:
            run.network.remove()

    initial = {k: (torch.zeros_like(v) if k.endswith("lora_up.weight") else v) for k, v in trained_tensors.items()}
    loss_before, loss_after = losses(initial), losses(trained_tensors)
    run.network.load_kohya_state_dict(trained_tensors)
    return {"run": run, "result": result, "before": loss_before, "after": loss_after,
            "hash_before": before_hash, "hash_after": state_hash(parts.parameters)}


def _unet_inputs(run, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(1, 4, 8, 8, generator=generator), torch.tensor([500])


def _predict(run, latents, t, prompt: str, weight: float) -> torch.Tensor:
    run.network.apply()
    try:
        with torch.no_grad():
            return run.stepper.predict(latents, t, [prompt], (64, 64), weight).float()
    finally:
        run.network.remove()


def test_loss_falls(trained) -> None:
    before, after = sum(trained["before"]), sum(trained["after"])
    assert after < 0.6 * before, (before, after)
    assert trained["result"].status == "finished" and len(trained["result"].losses) == 20


def test_target_moves_along_the_slider_direction(trained) -> None:
    run = trained["run"]
    for seed, timestep in ((0, 500), (1, 900)):
        latents, _ = _unet_inputs(run, seed)
        t = torch.tensor([timestep])
        direction = (_predict(run, latents, t, POSITIVE, 0.0) - _predict(run, latents, t, NEGATIVE, 0.0)).flatten()
        direction = direction / direction.norm()
        projections = [float(_predict(run, latents, t, TARGET, w).flatten() @ direction) for w in WEIGHTS]
        assert all(b > a for a, b in zip(projections, projections[1:])), projections
        zero = projections[WEIGHTS.index(0.0)]
        assert projections[WEIGHTS.index(1.0)] > zero > projections[WEIGHTS.index(-1.0)]


def test_host_weights_untouched(trained) -> None:
    assert trained["hash_before"] == trained["hash_after"]
    run = trained["run"]
    assert not run.network.applied


def test_same_seed_same_run(tmp_path) -> None:
    host = tiny_host()
    results = [
        train_leco(config(tmp_path / name, training={"steps": 2}), host.model(), views=host.views())
        for name in ("a", "b")
    ]
    assert results[0].losses == results[1].losses
    a, _ = load_network(results[0].final)
    b, _ = load_network(results[1].final)
    assert all(a[k].equal(b[k]) for k in a)
    other = train_leco(config(tmp_path / "c", training={"steps": 1, "seed": 4}), host.model(), views=host.views())
    assert other.losses[0] != results[0].losses[0]


def test_file_metadata(trained) -> None:
    _, meta = load_network(trained["result"].final)
    meta = parse_metadata(meta)
    assert meta["ss_network_module"] == "networks.lora"
    assert (meta["ss_network_dim"], meta["ss_network_alpha"]) == ("4", "1.0")
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert POSITIVE in meta["ss_training_comment"] and NEGATIVE in meta["ss_training_comment"]
    assert meta["ss_steps"] == "20" and meta["ss_learning_rate"] == "0.02"
    assert meta["bakery_leco_config"]["prompts"][0]["target"] == TARGET
    assert meta["sshs_model_hash"]


@pytest.mark.parametrize("weight", [1.0, -2.0])
def test_a1111_reference_loader_reproduces_slider(trained, weight: float) -> None:
    from lora_bakery.trainer.models import build_views

    run = trained["run"]
    state = tiny_host().model().parameters
    tensors, _ = load_network(trained["result"].final)
    merged, loaded, errors = merge_network(state, tensors, weight, weight)
    assert loaded.unmatched == [] and errors == []
    assert len(loaded.modules) == len(run.network.adapters)
    latents, t = _unet_inputs(run)
    ours = _predict(run, latents, t, TARGET, weight)
    cond = run.stepper.cache.batch([TARGET], 1, (64, 64))
    with torch.no_grad():
        theirs = build_views(merged).unet(latents, t, **cond).sample
    base = _predict(run, latents, t, TARGET, 0.0)
    assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-4
    assert float((ours - base).abs().max() / base.abs().max()) > 1e-3


def test_diffusers_load_lora_weights_reproduces_slider(trained, tmp_path) -> None:
    diffusers = pytest.importorskip("diffusers")
    from diffusers.utils import USE_PEFT_BACKEND

    if not USE_PEFT_BACKEND:
        pytest.skip("diffusers has no peft backend here (A1111 pins: transformers 4.30)")
    from lora_bakery.trainer.models import build_views

    run = trained["run"]
    fresh = build_views(tiny_host().model().parameters)
    pipe = diffusers.StableDiffusionPipeline(
        vae=fresh.vae, text_encoder=fresh.text_encoders[0], tokenizer=None, unet=fresh.unet,
        scheduler=diffusers.DDIMScheduler(), safety_checker=None, feature_extractor=None,
        requires_safety_checker=False,
    )
    final = trained["result"].final
    pipe.load_lora_weights(str(final.parent), weight_name=final.name, adapter_name="slider")
    latents, t = _unet_inputs(run)
    cond = run.stepper.cache.batch([TARGET], 1, (64, 64))
    for weight in (1.0, -1.0):
        pipe.set_adapters(["slider"], adapter_weights=[weight])
        with torch.no_grad():
            theirs = fresh.unet(latents, t, **cond).sample
        ours = _predict(run, latents, t, TARGET, weight)
        assert float((ours - theirs).abs().max() / theirs.abs().max()) < 1e-4, weight
