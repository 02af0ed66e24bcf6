"""Shared pytest fixtures.

Tiny checkpoints: ``tiny_sd15_path`` / ``tiny_sdxl_path`` are the ``.safetensors`` files written by
``lora_bakery.trainer.tiny.tiny_checkpoint`` (cached under ``$BAKERY_CACHE`` or
``~/.cache/lora-bakery``; safe with parallel workers). ``tokenizer/`` (and ``tokenizer_2/``) sit beside them.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_sd15_path() -> Path:
    from lora_bakery.trainer.tiny import tiny_checkpoint

    return tiny_checkpoint("sd15")


@pytest.fixture(scope="session")
def tiny_sdxl_path() -> Path:
    from lora_bakery.trainer.tiny import tiny_checkpoint

    return tiny_checkpoint("sdxl")
