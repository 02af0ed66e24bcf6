"""kohya metadata: every value a string, JSON fields parse back as A1111 reads them."""

from __future__ import annotations

import json

from lora_bakery.trainer.adapters import create_network, make_options
from lora_bakery.trainer.models import build_views
from lora_bakery.trainer.saving import (
    base_model_metadata,
    bucket_info,
    dataset_dirs,
    load_network,
    model_hash,
    parse_metadata,
    save_network,
    stringify_metadata,
    tag_frequency,
)
from tests.trainer.adapters.helpers import checkpoint_state


def test_stringify_as_kohya() -> None:
    out = stringify_metadata(
        {"ss_lr": 1e-4, "ss_flag": True, "ss_none": None, "ss_dirs": {"a": {"n": 1}}, "ss_seed": 42}
    )
    assert out == {
        "ss_lr": "0.0001",
        "ss_flag": "True",
        "ss_none": "None",
        "ss_dirs": '{"a": {"n": 1}}',
        "ss_seed": "42",
    }
    assert all(isinstance(v, str) for v in out.values())


def test_data_fields_and_parse_round_trip() -> None:
    values = {
        "ss_tag_frequency": tag_frequency({"/data/10_sks dog": ["sks, Dog, outdoors", "sks,dog"]}),
        "ss_dataset_dirs": dataset_dirs({"/data/10_sks dog": (10, 2)}),
        "ss_bucket_info": bucket_info([((512, 512), 2), ((448, 576), 1)], 0.01),
        "ss_network_dim": 16,
    }
    assert values["ss_tag_frequency"] == {"10_sks dog": {"sks": 2, "dog": 2, "outdoors": 1}}
    parsed = parse_metadata(stringify_metadata(values))
    assert parsed["ss_dataset_dirs"] == {"10_sks dog": {"n_repeats": 10, "img_count": 2}}
    assert parsed["ss_bucket_info"]["buckets"]["1"] == {"resolution": [448, 576], "count": 1}
    assert parsed["ss_tag_frequency"]["10_sks dog"]["outdoors"] == 1
    assert parsed["ss_network_dim"] == "16"


def test_base_model_versions(tiny_sd15_path) -> None:
    sdxl = base_model_metadata("sdxl")
    assert sdxl == {"ss_v2": "False", "ss_base_model_version": "sdxl_base_v1-0"}
    sd1 = base_model_metadata("sd1", v_prediction=True, checkpoint=tiny_sd15_path)
    assert sd1["ss_base_model_version"] == "sd_v1_v" and sd1["ss_v2"] == "False"
    assert sd1["ss_sd_model_name"] == tiny_sd15_path.name
    assert sd1["ss_sd_model_hash"] == model_hash(tiny_sd15_path) and len(sd1["ss_sd_model_hash"]) == 8
    assert len(sd1["ss_new_sd_model_hash"]) == 64
    assert base_model_metadata("sd2")["ss_v2"] == "True"


def test_saved_network_metadata_parses(tmp_path) -> None:
    views = build_views(checkpoint_state("sd15"))
    network = create_network(views, "dora", make_options("dora", dim=4, alpha=2, conv_dim=2))
    extra = stringify_metadata({**base_model_metadata("sd1"), "ss_output_name": "x", "ss_epoch": 1})
    _, metadata = load_network(save_network(tmp_path / "x.safetensors", network, extra))
    assert all(isinstance(v, str) for v in metadata.values())
    assert metadata["ss_network_module"] == "lycoris.kohya"
    assert metadata["ss_network_dim"] == "4" and metadata["ss_network_alpha"] == "2.0"
    args = json.loads(metadata["ss_network_args"])
    assert args["algo"] == "lora" and args["dora_wd"] == "True" and args["conv_dim"] == "2"
    parsed = parse_metadata(metadata)
    assert parsed["ss_network_args"]["conv_alpha"] == "1.0"
    assert metadata["ss_base_model_version"] == "sd_v1" and "sshs_model_hash" in metadata
