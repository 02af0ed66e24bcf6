"""Block ids and key -> block mapping against the lbw reference tables (leco-lbw.md B1-B3), key by key."""

from __future__ import annotations

import pytest
import torch

from lora_bakery.extension.compare.presets import DEFAULT_PRESETS, parse_presets, resolve_blocks
from lora_bakery.extension.host.lora_blocks import (
    BLOCKID12,
    BLOCKID17,
    BLOCKID20,
    BLOCKID26,
    compvis_name,
    expand_block_weights,
    layer_block,
    layer_ratio,
)

# Reference B2: A1111's conversion then lbw's substring match, spelled out for SD1 diffusers names.
SD1_TABLE = {
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj": "BASE",
    "lora_te_text_model_encoder_layers_11_mlp_fc2": "BASE",
    "lora_unet_down_blocks_0_resnets_0_conv1": "IN01",
    "lora_unet_down_blocks_0_attentions_0_proj_in": "IN01",
    "lora_unet_down_blocks_0_attentions_1_transformer_blocks_0_attn2_to_k": "IN02",
    "lora_unet_down_blocks_0_downsamplers_0_conv": "IN03",
    "lora_unet_down_blocks_1_attentions_0_proj_out": "IN04",
    "lora_unet_down_blocks_1_resnets_1_conv2": "IN05",
    "lora_unet_down_blocks_1_downsamplers_0_conv": "IN06",
    "lora_unet_down_blocks_2_attentions_1_proj_in": "IN08",
    "lora_unet_down_blocks_2_downsamplers_0_conv": "IN09",
    "lora_unet_down_blocks_3_resnets_0_conv1": "IN10",
    "lora_unet_down_blocks_3_resnets_1_time_emb_proj": "IN11",
    "lora_unet_mid_block_attentions_0_proj_in": "M00",
    "lora_unet_mid_block_resnets_1_conv2": "M00",
    "lora_unet_up_blocks_0_resnets_0_conv1": "OUT00",
    "lora_unet_up_blocks_0_resnets_2_conv_shortcut": "OUT02",
    "lora_unet_up_blocks_0_upsamplers_0_conv": "OUT02",
    "lora_unet_up_blocks_1_attentions_0_proj_in": "OUT03",
    "lora_unet_up_blocks_1_upsamplers_0_conv": "OUT05",
    "lora_unet_up_blocks_2_attentions_2_transformer_blocks_0_ff_net_2": "OUT08",
    "lora_unet_up_blocks_3_attentions_1_proj_out": "OUT10",
    "lora_unet_up_blocks_3_attentions_2_proj_out": "OUT11",
    "lora_unet_conv_out": None,
    "lora_unet_time_embedding_linear_1": None,
}
SDXL_TABLE = {
    "lora_te1_text_model_encoder_layers_0_self_attn_q_proj": "BASE",
    "lora_te2_text_model_encoder_layers_31_mlp_fc1": "BASE",
    "lora_unet_input_blocks_1_0_in_layers_2": "IN01",
    "lora_unet_input_blocks_3_0_op": "IN03",
    "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k": "IN04",
    "lora_unet_input_blocks_8_1_proj_out": "IN08",
    "lora_unet_middle_block_0_in_layers_2": "M00",
    "lora_unet_middle_block_1_transformer_blocks_9_ff_net_2": "M00",
    "lora_unet_middle_block_2_out_layers_3": "M00",
    "lora_unet_output_blocks_0_1_proj_in": "OUT00",
    "lora_unet_output_blocks_2_2_conv": "OUT02",
    "lora_unet_output_blocks_8_0_skip_connection": "OUT08",
}


def test_block_sets_match_the_reference():
    assert BLOCKID26 == ["BASE"] + [f"IN{i:02d}" for i in range(12)] + ["M00"] + [f"OUT{i:02d}" for i in range(12)]
    assert BLOCKID17 == ["BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00",
                         "OUT03", "OUT04", "OUT05", "OUT06", "OUT07", "OUT08", "OUT09", "OUT10", "OUT11"]
    assert BLOCKID12 == ["BASE", "IN04", "IN05", "IN07", "IN08", "M00", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05"]
    assert BLOCKID20 == ["BASE"] + [f"IN{i:02d}" for i in range(9)] + ["M00"] + [f"OUT{i:02d}" for i in range(9)]


@pytest.mark.parametrize("table", [SD1_TABLE, SDXL_TABLE], ids=["sd15", "sdxl"])
def test_reference_keys(table):
    for key, block in table.items():
        assert layer_block(key) == block, key


def test_a1111_names_and_conversion():
    assert compvis_name("lora_unet_down_blocks_1_attentions_0_proj_in") == "diffusion_model_input_blocks_4_1_proj_in"
    assert compvis_name("lora_unet_up_blocks_1_upsamplers_0_conv") == "diffusion_model_output_blocks_5_2_conv"
    assert compvis_name("lora_unet_up_blocks_0_upsamplers_0_conv") == "diffusion_model_output_blocks_2_1_conv"
    assert layer_block("diffusion_model_input_blocks_1_1_proj_in") == "IN01"  # A1111 module keys too
    assert layer_block("diffusion_model_input_blocks_10_0_in_layers_2") == "IN10"  # 1 does not match 10
    assert layer_block("1_model_transformer_resblocks_3_attn") == "BASE"
    assert layer_block("0_transformer_text_model_encoder_layers_3_mlp_fc1") == "BASE"


def _network_keys(arch: str) -> dict[str, str]:
    """Every layer a LoCon on the (full-structure) tiny model has, with the trainer's block of its LDM path."""
    from lora_bakery.trainer.adapters import create_network, make_options
    from lora_bakery.trainer.models import build_views, checkpoint_shapes
    from lora_bakery.trainer.tiny import tiny_configs

    tensors = {k: torch.empty(s, device="meta") for k, s in checkpoint_shapes(tiny_configs(arch)).items()}
    network = create_network(build_views(tensors), "locon", make_options("locon", dim=2, conv_dim=2))
    # lbw puts SDXL's whole middle block in M00 (the trainer's M00..M02 are the LDM sub-blocks)
    return {name: ("M00" if t.block.startswith("M") else t.block) for name, t in network.targets.items()}


@pytest.mark.parametrize(("arch", "sizes"), [("sd15", (17, 26)), ("sdxl", (12, 20))])
def test_every_layer_of_a_locon_maps_to_its_block_and_vectors_expand_by_name(arch, sizes):
    keys = _network_keys(arch)
    assert len(keys) > 200
    for key, block in keys.items():
        assert layer_block(key) == block, key
    for size in sizes:
        ids = {17: BLOCKID17, 26: BLOCKID26, 12: BLOCKID12, 20: BLOCKID20}[size]
        vector = [0.01 * (i + 1) for i in range(size)]
        weights26 = expand_block_weights(vector)
        for key, block in keys.items():
            expected = vector[ids.index(block)] if block in ids else 0.0  # lbw: unnamed slots are 0
            assert layer_ratio(key, weights26) == pytest.approx(expected), (size, key)


def test_expansion_and_presets():
    assert expand_block_weights([1.0] * 17) == [1.0 if b in BLOCKID17 else 0.0 for b in BLOCKID26]
    assert expand_block_weights([2.0] * 12)[BLOCKID26.index("OUT05")] == 2.0
    with pytest.raises(ValueError, match="12, 17, 20 or 26"):
        expand_block_weights([1.0] * 13)
    assert set(DEFAULT_PRESETS) == {"NONE", "ALL", "INS", "IND", "INALL", "MIDD", "OUTD", "OUTS", "OUTALL", "ALL0.5"}
    assert all(len(v) == 17 for v in DEFAULT_PRESETS.values())
    assert DEFAULT_PRESETS["MIDD"] == [1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    user = parse_presets("# mine\nFACE:1,0,0,0,0,0,0,0,1,1,1,0,0,0,0,0,0\nXL:" + ",".join(["0.5"] * 12) + "\n")
    assert resolve_blocks("FACE", {**DEFAULT_PRESETS, **user})[8] == 1.0
    assert resolve_blocks("1,0,1,0,1,0,1,0,1,0,1,0") == [1.0, 0.0] * 6
    with pytest.raises(ValueError, match="line 1"):
        parse_presets("BAD:1,2,3")
    with pytest.raises(ValueError, match="unknown block preset"):
        resolve_blocks("NOPE")
