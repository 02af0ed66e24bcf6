"""Network building, kohya naming, apply/remove, parameter groups, max-norm, dropout, file round trip."""

from __future__ import annotations

import pytest
import torch

from lora_bakery.trainer.adapters import ADAPTERS, block_values, create_network, make_options
from lora_bakery.trainer.adapters.targets import text_encoder_targets
from lora_bakery.trainer.models import build_views
from lora_bakery.trainer.saving import load_network, save_network

from .helpers import (
    ARCHS,
    KINDS,
    checkpoint_state,
    model_inputs,
    model_outputs,
    options_for,
    randomize,
)


@pytest.fixture(scope="module")
def sd15_views():
    return build_views(checkpoint_state("sd15"))


@pytest.fixture(scope="module")
def sdxl_views():
    return build_views(checkpoint_state("sdxl"))


def test_registry_holds_every_kind() -> None:
    assert set(KINDS) <= set(ADAPTERS)
    with pytest.raises(ValueError, match="unknown network type 'lycoris'"):
        make_options("lycoris")
    with pytest.raises(ValueError, match="no option"):
        make_options("lora", dimm=4)
    with pytest.raises(ValueError, match="conv_dim"):
        make_options("locon", conv_dim=None)


def test_sd15_kohya_names_and_counts(sd15_views) -> None:
    network = create_network(sd15_views, "lora", make_options("lora", dim=4, alpha=2))
    names = set(network.adapters)
    # 16 Transformer2DModels x 12 layers (real SD1.5: 192 too) + 3 text layers x 6
    assert network.count(text_encoder=False) == 192
    assert network.count(text_encoder=True) == 18
    assert "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q" in names
    assert "lora_unet_mid_block_attentions_0_proj_in" in names
    assert "lora_unet_up_blocks_3_attentions_2_transformer_blocks_0_ff_net_0_proj" in names
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj" in names
    assert "lora_te_text_model_encoder_layers_2_mlp_fc2" in names
    assert not any("resnets" in name for name in names)
    locon = create_network(sd15_views, "locon", make_options("locon", dim=4, alpha=2, conv_dim=2))
    locon_names = set(locon.adapters)
    for name in (
        "lora_unet_mid_block_resnets_0_conv1",
        "lora_unet_down_blocks_1_resnets_0_conv_shortcut",
        "lora_unet_down_blocks_0_downsamplers_0_conv",
        "lora_unet_up_blocks_1_upsamplers_0_conv",
        "lora_unet_up_blocks_0_resnets_0_time_emb_proj",
    ):
        assert name in locon_names
    conv1 = locon.adapters["lora_unet_mid_block_resnets_0_conv1"]
    shortcut = locon.adapters["lora_unet_down_blocks_1_resnets_0_conv_shortcut"]
    assert (conv1.dim, conv1.lora_down.weight.shape[2:]) == (2, (3, 3))
    assert shortcut.dim == 4  # 1x1 convs take network_dim (kohya)


def test_sdxl_kohya_names(sdxl_views) -> None:
    network = create_network(sdxl_views, "locon", make_options("locon", dim=4, alpha=2, conv_dim=2))
    names = set(network.adapters)
    for name in (
        "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k",
        "lora_unet_middle_block_1_transformer_blocks_1_attn1_to_out_0",
        "lora_unet_input_blocks_1_0_in_layers_2",
        "lora_unet_input_blocks_4_0_emb_layers_1",
        "lora_unet_output_blocks_0_0_out_layers_3",
        "lora_unet_output_blocks_0_0_skip_connection",
        "lora_unet_input_blocks_3_0_op",
        "lora_unet_output_blocks_2_2_conv",
        "lora_te1_text_model_encoder_layers_0_self_attn_q_proj",
        "lora_te2_text_model_encoder_layers_2_mlp_fc1",
    ):
        assert name in names, name
    assert network.targets["lora_te2_text_model_encoder_layers_0_self_attn_v_proj"].fused_qkv
    assert not network.targets["lora_te2_text_model_encoder_layers_0_mlp_fc1"].fused_qkv


@pytest.mark.parametrize("arch", ARCHS)
def test_text_names_without_text_model_prefix(arch: str, sd15_views, sdxl_views) -> None:
    """transformers 5 has no ``text_model.`` module level: names must not change."""
    views = sd15_views if arch == "sd15" else sdxl_views
    flat = [encoder.text_model for encoder in views.text_encoders]  # module paths start at "encoder."
    assert [t.name for t in text_encoder_targets(flat, views.architecture)] == [
        t.name for t in text_encoder_targets(views.text_encoders, views.architecture)
    ]


@pytest.mark.parametrize("kind", ["lora", "ia3", "oft"])  # the three forward styles (low-rank, gain, merged)
def test_remove_restores_host_bitwise(kind: str) -> None:
    state = checkpoint_state("sd15")
    before = {k: v.clone() for k, v in state.items()}
    views = build_views(state)
    modules = {name: type(m) for name, m in views.unet.named_modules()}
    network = create_network(views, kind, options_for(kind))
    randomize(network)
    inputs = model_inputs(views)
    base = model_outputs(views, inputs)
    network.apply()
    network.apply()  # idempotent
    adapted = model_outputs(views, inputs)
    network.remove()
    after = model_outputs(views, inputs)
    assert all(torch.equal(state[k], before[k]) for k in state)
    assert all("forward" not in m.__dict__ for m in views.unet.modules())
    assert {name: type(m) for name, m in views.unet.named_modules()} == modules
    for key in base:
        assert torch.equal(after[key], base[key])
        assert not torch.equal(adapted[key], base[key])


def test_gradients_reach_adapters_only(sd15_views) -> None:
    network = create_network(sd15_views, "lora", options_for("lora"))
    inputs = model_inputs(sd15_views)
    with network.applied_to_model():
        out = sd15_views.unet(
            inputs["sample"], inputs["timestep"], encoder_hidden_states=inputs["encoder_hidden_states"]
        )
        out.sample.square().mean().backward()
    assert all(p.grad is None for p in sd15_views.unet.parameters())
    ups = [a.lora_up.weight.grad for a in network.adapters.values() if a.lora_name.startswith("lora_unet")]
    assert all(g is not None for g in ups) and any(g.abs().sum() > 0 for g in ups)


def test_parameter_groups(sd15_views) -> None:
    network = create_network(sd15_views, "lora", options_for("lora"))
    weights = block_values([0.0] * 4 + [0.5] * 8 + [1.0] + [2.0] * 12, "sd1")
    groups = {g["name"]: g for g in network.trainable_parameters(1e-4, 5e-5, weights)}
    assert groups["text_encoder"]["lr"] == 5e-5
    assert groups["unet_IN04"]["lr"] == pytest.approx(5e-5)
    assert groups["unet_OUT03"]["lr"] == pytest.approx(2e-4)
    assert groups["unet"]["lr"] == 1e-4  # M00 at weight 1
    assert "unet_IN01" not in groups  # lr 0: left out of the optimizer, still saved
    n_in01 = sum(1 for t in network.targets.values() if t.block in ("IN00", "IN01", "IN02", "IN03"))
    counted = sum(len(g["params"]) for g in groups.values())
    assert counted == 2 * (len(network.adapters) - n_in01)
    assert [g["name"] for g in network.trainable_parameters(1e-4, 0.0)] == ["unet"]


def test_block_dims_skip_and_rank(sd15_views) -> None:
    dims = block_values([0] * 4 + [8] * 8 + [4] + [0] * 12, "sd1")
    options = make_options("lora", dim=4, alpha=2, block_dims=dims)
    network = create_network(sd15_views, "lora", options, train_text_encoder=False)
    assert {t.block for t in network.targets.values()} == {"IN04", "IN05", "IN07", "IN08", "M00"}
    assert network.adapters["lora_unet_down_blocks_1_attentions_0_proj_in"].dim == 8
    with pytest.raises(ValueError, match="23"):
        block_values([1] * 25, "sdxl")


def test_max_norm_caps_every_delta(sd15_views) -> None:
    network = create_network(sd15_views, "lora", options_for("lora"))
    randomize(network)
    with torch.no_grad():
        norms = [float(a.updown_unit().norm()) for a in network.adapters.values()]
    cap = sorted(norms)[len(norms) // 2]
    scaled, mean, largest = network.apply_max_norm(cap)
    assert scaled >= len(norms) // 2 - 1
    assert largest == pytest.approx(cap, rel=1e-4)
    with torch.no_grad():
        assert all(float(a.updown_unit().norm()) <= cap * (1 + 1e-4) for a in network.adapters.values())


def test_dropouts_only_in_training(sd15_views) -> None:
    options = make_options("lora", dim=4, alpha=4, dropout=0.5, rank_dropout=0.5, module_dropout=0.5)
    network = create_network(sd15_views, "lora", options)
    randomize(network)
    inputs = model_inputs(sd15_views)
    with network.applied_to_model():
        network.eval()
        first, second = model_outputs(sd15_views, inputs), model_outputs(sd15_views, inputs)
        network.train()
        torch.manual_seed(0)
        noisy = model_outputs(sd15_views, inputs)
    assert torch.equal(first["unet"], second["unet"])
    assert not torch.equal(noisy["unet"], first["unet"])


@pytest.mark.parametrize("kind", KINDS)
def test_file_round_trip(kind: str, sd15_views, tmp_path) -> None:
    network = create_network(sd15_views, kind, options_for(kind))
    randomize(network, seed=3)
    path = save_network(tmp_path / "net.safetensors", network, precision="fp32")
    tensors, metadata = load_network(path)
    assert metadata["ss_network_module"] == ADAPTERS[kind].network_module
    other = create_network(sd15_views, kind, options_for(kind))
    assert other.load_kohya_state_dict(tensors) == []
    theirs = other.kohya_state_dict()
    for key, value in network.kohya_state_dict().items():
        assert torch.equal(theirs[key].float(), value.float()), key
    with pytest.raises(ValueError, match="unknown layers"):
        create_network(sd15_views, kind, options_for(kind), train_text_encoder=False).load_kohya_state_dict(
            tensors
        )


def test_dylora_trains_one_rank_band(sd15_views) -> None:
    network = create_network(
        sd15_views, "dylora", make_options("dylora", dim=4, alpha=4, unit=2), train_unet=False
    )
    randomize(network)
    inputs = model_inputs(sd15_views)
    encoder = sd15_views.text_encoders[0]
    with network.applied_to_model():
        network.train()
        encoder(inputs["ids"])[0].square().mean().backward()
    adapter = network.adapters["lora_te_text_model_encoder_layers_0_self_attn_q_proj"]
    rows = adapter.lora_down.weight.grad.abs().sum(dim=1) > 0
    assert rows.tolist() in ([True, True, False, False], [False, False, True, True])
    cols = adapter.lora_up.weight.grad.abs().sum(dim=0) > 0
    assert cols.tolist() == rows.tolist()


@pytest.mark.parametrize(
    ("shape", "dim", "full"),
    [((768, 768), 16, True), ((1280, 1280), 16, False), ((320, 320, 3, 3), 16, True), ((320, 320, 3, 3), 8, False)],
)
def test_lokr_w2_is_whole_where_lycoris_makes_it_whole(shape, dim: int, full: bool) -> None:
    """LyCORIS stores w2 whole when dim >= max(b, d) / 2 (768 = 24 x 32, 1280 = 32 x 40, 320 = 16 x 20),
    builds its modules by that rule when it loads a file, and uses scale 1 then; A1111 reads either."""
    from lora_bakery.trainer.adapters.lokr import LokrModule
    from tests.reference_loader.a1111_modules import RefLokr

    layer = torch.nn.Linear(shape[1], shape[0]) if len(shape) == 2 else torch.nn.Conv2d(shape[1], shape[0], 3, padding=1)
    module = LokrModule("lora_unet_x", layer, dim, 4.0, make_options("lokr", dim=dim, alpha=4.0))
    tensors = module.kohya_tensors()
    assert ("lokr_w2" in tensors) is full and ("lokr_w2_a" in tensors) is not full
    if full:
        assert tuple(tensors["lokr_w2"].shape) == (shape[0] // module.lokr_w1.shape[0], shape[1] // module.lokr_w1.shape[1],
                                                   *shape[2:])
        assert float(tensors["alpha"]) == dim and module.scale() == 1.0
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    ref = RefLokr("lora_unet_x", {k: v.detach() for k, v in module.kohya_tensors().items()}, (1.0, 1.0))
    expected = ref.calc_updown(layer.weight.detach())
    assert torch.allclose(module.updown(), expected, rtol=1e-5, atol=1e-5)
    clone = LokrModule("lora_unet_x", layer, dim, 4.0, make_options("lokr", dim=dim, alpha=4.0))
    clone.load_kohya_tensors(module.kohya_tensors())
    assert torch.equal(clone.updown(), module.updown())
