"""Model folders: local, known names, offline downloads with a message naming the folder."""

from __future__ import annotations

import shutil

import pytest

from lora_bakery.extension.tagger.errors import TaggerError
from lora_bakery.extension.tagger.models import KNOWN_TAGGERS, resolve_model


def test_local_folder(tiny_v3):
    assert resolve_model(tiny_v3) == tiny_v3
    assert resolve_model(str(tiny_v3)) == tiny_v3


def test_incomplete_folder(tmp_path, tiny_v3):
    shutil.copy(tiny_v3 / "model.onnx", tmp_path / "model.onnx")
    with pytest.raises(TaggerError, match="lacks selected_tags.csv"):
        resolve_model(tmp_path)


def test_known_names():
    assert KNOWN_TAGGERS["wd-v1-4-moat-tagger-v2"].repo_id == "SmilingWolf/wd-v1-4-moat-tagger-v2"
    assert KNOWN_TAGGERS["wd-swinv2-tagger-v3"].pr_threshold == 0.2653
    assert KNOWN_TAGGERS["wd-eva02-large-tagger-v3"].generation == "v3"


def test_named_model_already_in_models_dir(tmp_path, tiny_v3):
    shutil.copytree(tiny_v3, tmp_path / "wd-vit-tagger-v3")
    assert resolve_model("SmilingWolf/wd-vit-tagger-v3", tmp_path) == tmp_path / "wd-vit-tagger-v3"
    assert resolve_model("wd-vit-tagger-v3", tmp_path, download=False) == tmp_path / "wd-vit-tagger-v3"


def test_not_downloaded_names_the_folder(tmp_path):
    with pytest.raises(TaggerError) as err:
        resolve_model("wd-convnext-tagger-v3", tmp_path, download=False)
    assert str(tmp_path / "wd-convnext-tagger-v3") in str(err.value)
    assert "https://huggingface.co/SmilingWolf/wd-convnext-tagger-v3" in str(err.value)


def test_offline_download_names_the_folder(tmp_path, monkeypatch):
    """HF_HUB_OFFLINE: huggingface_hub is asked for cached files only and finds none."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(TaggerError) as err:
        resolve_model("wd-v1-4-vit-tagger-v2", tmp_path / "models")
    message = str(err.value)
    assert "offline" in message and str(tmp_path / "models" / "wd-v1-4-vit-tagger-v2") in message


def test_unknown_name(tmp_path):
    with pytest.raises(TaggerError, match="unknown tagger 'nope'.*wd-vit-tagger-v3"):
        resolve_model("nope", tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(TaggerError, match="tagger folder .* does not exist"):
        resolve_model(tmp_path / "nowhere")
