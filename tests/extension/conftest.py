"""Fixtures shared by the API gate tests (webui and ``bakery app``)."""

from __future__ import annotations

import os

import pytest

from lora_bakery.extension import allowed_folders
from tests.extension.dataset_ops.helpers import make_dataset


@pytest.fixture
def fresh_session_folders():
    """No folder counts as opened in the UI before or after the test (the list is process-wide)."""
    allowed_folders.forget_session()
    yield
    allowed_folders.forget_session()


@pytest.fixture
def api_folders(tmp_path):
    """``allowed/`` (a dataset ``train``, a reg folder, a LoRA folder, a link to ``outside``) and ``outside/``
    (a dataset ``train``)."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    make_dataset(allowed / "train")
    make_dataset(outside / "train")
    (allowed / "reg").mkdir()
    (allowed / "loras").mkdir()
    os.symlink(outside, allowed / "link", target_is_directory=True)
    return allowed, outside
