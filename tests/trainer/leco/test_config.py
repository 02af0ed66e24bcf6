"""LecoConfig: defaults, LECO's prompt defaults, attributes, TOML round trip, and bad input."""

from __future__ import annotations

import pytest

from lora_bakery.trainer.config import ConfigError
from lora_bakery.trainer.leco import FP16_REFUSED, PRESETS, LecoConfig, PromptEntry, preset


def test_defaults_follow_leco() -> None:
    config = LecoConfig()
    assert (config.network.dim, config.network.alpha, config.network.modules) == (4, 1.0, "full")
    t = config.training
    assert (t.lr, t.steps, t.optimizer, t.precision, t.max_denoising_steps, t.latent_cfg) == (1e-4, 500, "adamw", "bf16", 50, 3.0)
    assert config.saving.precision == "fp16"
    assert config.preview.multipliers == [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0]


def test_missing_prompts_default_as_leco() -> None:
    # positive -> target, unconditional -> "", neutral -> unconditional (reference §A1.8)
    assert PromptEntry(target="van gogh", action="erase").resolved() == ("van gogh", "van gogh", "", "")
    assert PromptEntry(target="a", positive="b", unconditional="c").resolved() == ("a", "b", "c", "c")


def test_empty_target_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"prompts\[0\]\.target: is empty"):
        LecoConfig.from_dict({"prompts": [{"target": "  ", "positive": "x"}]})


def test_identical_positive_and_negative_is_refused() -> None:
    with pytest.raises(ConfigError, match="nothing to learn") as info:
        LecoConfig.from_dict({"prompts": [{"target": "skirt", "positive": "long skirt", "unconditional": "long skirt"}]})
    assert info.value.field == "prompts[0].positive"


def test_fp16_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError) as info:
        LecoConfig.from_dict({"training": {"precision": "fp16"}})
    assert info.value.field == "training.precision"
    assert "NaN" in str(info.value) and FP16_REFUSED in str(info.value)


def test_unknown_key_names_it() -> None:
    with pytest.raises(ConfigError, match="did you mean 'guidance_scale'"):
        LecoConfig.from_dict({"prompts": [{"target": "a", "guidance": 2}]})


def test_check_ready_needs_prompts_and_folder(tmp_path) -> None:
    with pytest.raises(ConfigError, match="no prompt entry"):
        LecoConfig().check_ready()
    with pytest.raises(ConfigError, match="saving.output_dir"):
        LecoConfig.from_dict({"prompts": [{"target": "a"}]}).check_ready()
    LecoConfig.from_dict({"prompts": [{"target": "a"}], "saving": {"output_dir": str(tmp_path)}}).check_ready()


def test_attributes_prefix_all_four_prompts() -> None:
    config = LecoConfig.from_dict({
        "prompts": [{"target": "person", "positive": "person, old", "unconditional": "person, young"}],
        "attributes": ["male", "female"],
    })
    entries = config.expanded_prompts()
    assert [e.resolved() for e in entries] == [
        ("male person", "male person, old", "male person, young", "male person, young"),
        ("female person", "female person, old", "female person, young", "female person, young"),
    ]


def test_toml_round_trip(tmp_path) -> None:
    config = LecoConfig.from_dict({
        **preset("skirt length (guide)"),
        "anchors": [{"prompt": "1girl, face", "weight": 0.5}],
        "training": {"bidirectional": True, "optimizer_args": ["weight_decay=0.01"]},
        "saving": {"output_dir": str(tmp_path), "save_every": 50},
    })
    path = config.save(tmp_path / "leco.toml")
    assert LecoConfig.load(path) == config
    assert "[[prompts]]" in path.read_text() and "[[anchors]]" in path.read_text()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_are_valid(name: str) -> None:
    assert LecoConfig.from_dict(preset(name)).prompts


def test_summary_holds_the_prompts() -> None:
    config = LecoConfig.from_dict(preset("skirt length (guide)"))
    assert "long_skirt" in config.summary() and "microskirt" in config.summary()


def test_warnings() -> None:
    config = LecoConfig.from_dict({"training": {"lr": 2e-3}, "network": {"dim": 2, "alpha": 4}})
    text = " ".join(config.warnings())
    assert "burn" in text and "above dim" in text
