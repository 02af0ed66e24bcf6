"""The training config: validation names the field, TOML round trips, kohya dataset configs,
flat/argparse faces, presets, migrations and the ss_* metadata."""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing

import pytest

from lora_bakery.trainer.config import (
    ConfigError,
    NetworkSection,
    Subset,
    TrainConfig,
    add_arguments,
    dataset_from_kohya,
    dataset_to_kohya,
    fields,
    from_args,
    from_flat,
    list_presets,
    load_preset,
    migrate,
    parse_kv_args,
    to_flat,
    to_ss_metadata,
)
from lora_bakery.trainer.config.fields import Section
from lora_bakery.trainer.config.toml_io import loads as toml_loads

KOHYA_DATASET = """
[general]
shuffle_caption = true
caption_extension = '.txt'
keep_tokens = 1

[[datasets]]
resolution = 512
batch_size = 4
keep_tokens = 2

  [[datasets.subsets]]
  image_dir = 'C:\\hoge'
  class_tokens = 'hoge girl'
  num_repeats = 10

  [[datasets.subsets]]
  image_dir = 'C:\\fuga'
  class_tokens = 'fuga boy'
  keep_tokens = 3

  [[datasets.subsets]]
  is_reg = true
  image_dir = 'C:\\reg'
  class_tokens = 'human'
  keep_tokens = 1

[[datasets]]
resolution = [768, 768]
batch_size = 2
flip_aug = true
keep_tokens_separator = "|||"

  [[datasets.subsets]]
  image_dir = 'C:\\piyo'
  class_tokens = 'piyo'
"""


@pytest.mark.parametrize(
    "data, field",
    [
        ({"network": {"dim": 0}}, "network.dim"),
        ({"network": {"dim": "32"}}, "network.dim"),
        ({"network": {"dim": True}}, "network.dim"),
        ({"network": {"type": "lorax"}}, "network.type"),
        ({"network": {"dropout": 1.0}}, "network.dropout"),
        ({"network": {"type": "locon"}}, "network.conv_dim"),
        ({"network": {"block_dims": [4] * 24}}, "network.block_dims"),
        ({"network": {"train_unet": False, "train_text_encoder": False}}, "network.train_unet"),
        ({"optimizer": {"lr": -1}}, "optimizer.lr"),
        ({"optimizer": {"args": ["weight_decay 0.1"]}}, "optimizer.args[0]"),
        ({"optimizer": {"args": ["a=1", "a=2"]}}, "optimizer.args[1]"),
        ({"training": {"mixed_precision": "fp8"}}, "training.mixed_precision"),
        ({"training": {"min_timestep": 500, "max_timestep": 400}}, "training.min_timestep"),
        ({"saving": {"output_name": "a/b"}}, "saving.output_name"),
        ({"saving": {"ouput_dir": "x"}}, "saving.ouput_dir"),
        ({"dataset": {"general": {"caption_extension": "txt"}}}, "dataset.general.caption_extension"),
        (
            {
                "dataset": {
                    "datasets": [{"subsets": [{"image_dir": "a"}, {"image_dir": "b", "num_repeats": 0}]}]
                }
            },
            "dataset.datasets[0].subsets[1].num_repeats",
        ),
        (
            {"dataset": {"datasets": [{"subsets": [{"num_repeats": 2}]}]}},
            "dataset.datasets[0].subsets[0].image_dir",
        ),
        ({"dataset": {"datasets": [{"resolution": [512]}]}}, "dataset.datasets[0].resolution"),
        ({"dataset": {"train_data_dir": "x", "datasets": [{}]}}, "dataset.train_data_dir"),
        (
            {"optimizer": {"type": "prodigy"}, "network": {"scale_weight_norms": 1.0}},
            "network.scale_weight_norms",
        ),
        ({"version": 99}, "version"),
    ],
)
def test_bad_values_name_the_field(data, field):
    with pytest.raises(ConfigError) as info:
        TrainConfig.from_dict(data)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(field + ":")


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean 'dim'"):
        TrainConfig.from_dict({"network": {"dimm": 4}})


def test_direct_construction_validates_and_coerces():
    net = NetworkSection(dim=32.0, alpha=16)  # gradio sends floats, TOML ints
    assert net.dim == 32 and isinstance(net.dim, int) and isinstance(net.alpha, float)
    with pytest.raises(ConfigError, match="^dim:"):
        NetworkSection(dim=2.5)


def test_optional_fields_default_to_none():
    """TOML has no null: every field that may be None must default to None, or it cannot round-trip."""

    def walk(cls):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            if isinstance(hint, type) and issubclass(hint, Section):
                yield from walk(hint)
            elif type(None) in typing.get_args(hint):
                yield cls.__name__, f.name, f.default

    bad = [(c, n, d) for c, n, d in walk(TrainConfig) if d is not None]
    assert not bad


def test_toml_round_trip_of_a_full_config():
    cfg = TrainConfig.from_dict(
        {
            "network": {
                "type": "locon",
                "conv_dim": 16,
                "conv_alpha": 8,
                "block_dims": list(range(25)),
                "args": ["x=1"],
            },
            "optimizer": {"type": "prodigy", "lr": 1, "args": ["betas=0.9,0.99", 'name="a \\"q\\""']},
            "training": {"noise_offset": 0.05, "max_token_length": 225, "v_pred": True},
            "saving": {"output_dir": "C:\\out dir\\ü", "training_comment": "line1\nline2\ttab \x7f"},
            "sampling": {"prompts": ["sks dog --n blurry --w 512 --d 3"]},
            "dataset": dataset_from_kohya(toml_loads(KOHYA_DATASET)).to_dict()
            | {"general": {"custom_attributes": {"a": 1, "b": "x"}, "shuffle_caption": True}},
        }
    )
    text = cfg.to_toml()
    again = TrainConfig.from_toml(text)
    assert again == cfg
    assert again.to_toml() == text


def test_save_and_load_file(tmp_path):
    cfg = load_preset("Character, Prodigy")
    path = cfg.save(tmp_path / "sub" / "run.toml")
    assert TrainConfig.load(path) == cfg
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_kohya_dataset_config_reads_unchanged_and_resolves():
    data = toml_loads(KOHYA_DATASET)
    section = dataset_from_kohya(data)
    assert len(section.datasets) == 2 and len(section.datasets[0].subsets) == 3
    # written back as kohya TOML, it parses to the same dict
    assert toml_loads(dataset_to_kohya(section)) == data
    # a bare kohya file is also accepted as a whole config
    assert TrainConfig.from_toml(KOHYA_DATASET).dataset == section
    resolved = section.resolve_blocks()
    ds0, subs0 = resolved[0]
    assert ds0["resolution"] == 512 and ds0["batch_size"] == 4 and ds0["enable_bucket"] is True
    assert [s.keep_tokens for s in subs0] == [2, 3, 1]  # subset > dataset > general
    assert [s.num_repeats for s in subs0] == [10, 1, 1]
    assert subs0[0].shuffle_caption is True and subs0[0].caption_extension == ".txt"
    assert subs0[2].is_reg is True and subs0[0].is_reg is False
    ds1, subs1 = resolved[1]
    assert ds1["resolution"] == [768, 768] and subs1[0].flip_aug and subs1[0].keep_tokens == 1
    # ds1 sets it; ds0 gets the default, "|||" (what add-triggers writes; kohya's default is "")
    assert subs1[0].keep_tokens_separator == "|||" and subs0[0].keep_tokens_separator == "|||"


def test_kohya_dataset_config_rejects_unknown_keys():
    with pytest.raises(ConfigError) as info:
        dataset_from_kohya({"datasets": [{"subsets": [{"image_dir": "x", "num_repeat": 3}]}]})
    assert info.value.field == "datasets[0].subsets[0].num_repeat"
    assert "num_repeats" in info.value.message


def test_flat_round_trip_and_unknown_name():
    cfg = load_preset("IA3 prototype")
    flat = to_flat(cfg)
    assert (
        flat["network.type"] == "ia3"
        and flat["optimizer.lr"] == 1.0
        and flat["dataset.general.keep_tokens"] == 1
    )
    assert "version" not in flat and not any(k.startswith("dataset.datasets") for k in flat)
    assert from_flat(flat) == cfg
    changed = from_flat({"network.dim": 8.0, "training.noise_offset": None}, base=cfg)
    assert changed.network.dim == 8 and changed.optimizer.type == "prodigy"
    with pytest.raises(ConfigError, match="^network.dimm"):
        from_flat({"network.dimm": 3})
    with pytest.raises(ConfigError, match="^network.dim:"):
        from_flat({"network.dim": -3})


def test_fields_carry_help_and_groups():
    rows = {r["name"]: r for r in fields()}
    assert rows["network.dim"]["help"] and rows["network.dim"]["group"] == "Network"
    assert rows["optimizer.scheduler"]["choices"][0] == "constant"
    assert all(r["help"] for r in rows.values())


def test_argparse_options_override_a_base_config():
    parser = add_arguments(argparse.ArgumentParser())
    ns = parser.parse_args(
        [
            "--network.dim",
            "8",
            "--network.train_text_encoder",
            "false",
            "--optimizer.args",
            "weight_decay=0.1",
            "d_coef=2",
        ]
    )
    base = load_preset("Character, Prodigy")
    cfg = from_args(ns, base)
    assert cfg.network.dim == 8 and cfg.network.train_text_encoder is False
    assert cfg.optimizer.args == ["weight_decay=0.1", "d_coef=2"]
    assert cfg.optimizer.type == "prodigy"  # untouched options keep the base's value
    with pytest.raises(SystemExit):
        parser.parse_args(["--network.type", "nope"])


def test_parse_kv_args():
    got = parse_kv_args(
        ["betas=0.9,0.99", "decouple=true", "d_coef=2", "mode=fast", "eps=1e-8"], "x", literal=True
    )
    assert got == {"betas": (0.9, 0.99), "decouple": True, "d_coef": 2, "mode": "fast", "eps": 1e-8}
    assert parse_kv_args(["conv_dim=4"], "x", literal=False) == {"conv_dim": "4"}
    with pytest.raises(ConfigError, match=r"^x\[0\]"):
        parse_kv_args(["weight_decay=[0.1"], "x", literal=True)


def test_every_preset_loads_validates_and_round_trips():
    names = [p["name"] for p in list_presets()]
    assert set(names) == {
        "Character, Prodigy",
        "Character, AdamW",
        "Style",
        "Concept/pose low-dim",
        "IA3 prototype",
    }
    for name in names:
        cfg = load_preset(name)
        assert TrainConfig.from_toml(cfg.to_toml()) == cfg
        assert not cfg.warnings(), (name, cfg.warnings())
    assert load_preset("concept-pose-low-dim").network.dim == 1
    assert load_preset("character prodigy").optimizer.scheduler == "cosine_annealing_warmup_restarts"
    with pytest.raises(ConfigError, match="available"):
        load_preset("nope")


def test_migrations_run_in_order():
    steps = {
        1: lambda d: {**d, "trail": d.get("trail", []) + [1]},
        2: lambda d: {**d, "trail": d["trail"] + [2]},
    }
    assert migrate({"version": 1}, steps, current=3) == {"version": 3, "trail": [1, 2]}
    with pytest.raises(ConfigError, match="no migration"):
        migrate({"version": 1}, {}, current=2)
    assert migrate({}, {}, current=1) == {"version": 1}


def test_check_ready():
    cfg = TrainConfig()
    with pytest.raises(ConfigError, match="^dataset.train_data_dir"):
        cfg.check_ready()
    cfg = TrainConfig.from_dict({"dataset": {"train_data_dir": "x"}})
    with pytest.raises(ConfigError, match="^saving.output_dir"):
        cfg.check_ready()
    cfg = TrainConfig.from_dict(
        {"dataset": {"train_data_dir": "x", "general": {"color_aug": True}}, "saving": {"output_dir": "o"}}
    )
    with pytest.raises(ConfigError, match="^training.cache_latents"):
        cfg.check_ready()


def test_ss_metadata_is_strings_as_kohya_writes_them():
    cfg = TrainConfig.from_dict(
        {
            "network": {"type": "locon", "dim": 32, "alpha": 16, "conv_dim": 16, "conv_alpha": 8},
            "optimizer": {"lr": 1e-4, "args": ["weight_decay=0.1", "betas=0.9,0.99"], "warmup": 100},
            "saving": {"output_name": "sks", "training_comment": "sks, red_eyes"},
        }
    )
    meta = to_ss_metadata(cfg, architecture="sd1", clip_skip=2, max_train_steps=800)
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == "32" and meta["ss_network_alpha"] == "16.0"
    assert meta["ss_learning_rate"] == "0.0001" and meta["ss_unet_lr"] == "None"
    assert meta["ss_lr_warmup_steps"] == "100" and meta["ss_max_train_steps"] == "800"
    assert meta["ss_optimizer"] == "torch.optim.adamw.AdamW(weight_decay=0.1,betas=(0.9, 0.99))"
    assert meta["ss_v2"] == "False" and meta["ss_base_model_version"] == "sd_v1"
    assert meta["ss_clip_skip"] == "2" and meta["ss_noise_offset"] == "None"
    assert meta["ss_training_comment"] == "sks, red_eyes" and meta["ss_output_name"] == "sks"
    assert json.loads(meta["ss_network_args"]) == {"conv_dim": "16", "conv_alpha": "8.0"}
    assert to_ss_metadata(cfg, architecture="sdxl")["ss_base_model_version"] == "sdxl_base_v1-0"
    v2 = to_ss_metadata(cfg, architecture="sd2", v_pred=True)
    assert v2["ss_v2"] == "True" and v2["ss_base_model_version"] == "sd_v2_v"
    lokr = to_ss_metadata(TrainConfig.from_dict({"network": {"type": "lokr"}}), architecture="sd1")
    assert lokr["ss_network_module"] == "lycoris.kohya" and json.loads(lokr["ss_network_args"]) == {
        "algo": "lokr"
    }
    assert "ss_network_args" not in to_ss_metadata(TrainConfig(), architecture="sd1")


def test_subset_needs_image_dir():
    with pytest.raises(ConfigError, match="^image_dir"):
        Subset()
