"""Compare fixtures: one tiny SD1.5 DiffusersHost per session and a fake 3-epoch LoCon run beside it."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sd15_host(tiny_sd15_path):
    from lora_bakery.extension.host.diffusers_host import DiffusersHost

    return DiffusersHost(tiny_sd15_path, device="cpu")


@pytest.fixture(scope="session")
def locon_run(sd15_host, tmp_path_factory):
    """``run/demo-000001.safetensors``, ``-000002``, ``demo.safetensors`` (fp32 LoCon, text encoder too)."""
    from lora_bakery.extension.compare.synthetic import make_epoch_files

    folder = tmp_path_factory.mktemp("run")
    return make_epoch_files(sd15_host.views(), folder, name="demo", epochs=3, kind="locon", precision="fp32")


@pytest.fixture
def host_hash(sd15_host):
    """A function returning a digest of every host tensor (bitwise)."""
    import hashlib

    import torch

    def digest() -> str:
        h = hashlib.sha256()
        for key, tensor in sorted(sd15_host.model().parameters.items()):
            h.update(key.encode())
            h.update(tensor.detach().contiguous().view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    return digest
