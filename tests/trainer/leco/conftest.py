"""One torch thread per LECO test: the tiny model is far too small to gain from more, and on a busy
machine OpenMP threads waiting for each other make each U-Net call up to 30x slower."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
