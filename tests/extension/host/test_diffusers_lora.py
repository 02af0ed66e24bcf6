"""LoRA files on DiffusersHost: every kind our trainer saves is read back, applied for one use and removed."""

from __future__ import annotations

import pytest
import torch

from lora_bakery.extension.compare.synthetic import make_epoch_files
from lora_bakery.extension.host.base import HostError, LoraSpec
from lora_bakery.extension.host.diffusers_host import DiffusersHost
from lora_bakery.extension.host.diffusers_lora import FileNetworks, file_kind

KINDS = ("lora", "locon", "dora", "loha", "lokr", "ia3", "oft", "dylora")


@pytest.fixture(scope="module")
def host(tiny_sd15_path):
    return DiffusersHost(tiny_sd15_path, device="cpu")


def _unet(views):
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=gen)
    context = torch.randn(1, 8, views.configs.unet["cross_attention_dim"], generator=gen)
    with torch.no_grad():
        return views.unet(sample, torch.tensor([400]), encoder_hidden_states=context).sample


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_rebuilt_exactly_and_removed(host, kind, tmp_path):
    views = host.views()
    (path,) = make_epoch_files(views, tmp_path, name=kind, epochs=1, kind=kind, precision="fp32")
    clean = _unet(views)
    networks = FileNetworks()
    network = networks.network(views, LoraSpec(str(path)))
    from lora_bakery.trainer.saving import load_network

    tensors, metadata = load_network(path)
    assert file_kind(tensors, metadata) in (kind, "lora" if kind == "locon" else kind)
    saved = network.kohya_state_dict()
    assert set(saved) == set(tensors) and all(torch.equal(saved[k].float(), tensors[k].float()) for k in tensors)
    with network.applied_to_model():
        changed = _unet(views)
    assert (changed - clean).abs().max() > 1e-6
    assert torch.equal(_unet(views), clean)  # removed: the host computes exactly as before
    if kind == "oft":
        with pytest.raises(HostError, match="OFT"):
            networks.network(views, LoraSpec(str(path), block_weights=[0.5] * 17))
    else:
        ones = networks.network(views, LoraSpec(str(path), block_weights=[1.0] * 26))
        with ones.applied_to_model():
            assert torch.equal(_unet(views), changed)


def test_files_for_another_family_and_missing_files_are_refused(host, tmp_path, tiny_sdxl_path):
    xl = DiffusersHost(tiny_sdxl_path, device="cpu")
    (path,) = make_epoch_files(xl.views(), tmp_path, name="xl", epochs=1, kind="lora")
    with pytest.raises(HostError, match="another model family"):
        FileNetworks().network(host.views(), LoraSpec(str(path)))
    with pytest.raises(HostError, match="not found"):
        FileNetworks().network(host.views(), LoraSpec(str(tmp_path / "missing.safetensors")))


def test_files_without_metadata_are_read_from_their_shapes(host, tmp_path):
    from lora_bakery.trainer.saving import load_network, save_network

    views = host.views()
    (path,) = make_epoch_files(views, tmp_path, name="meta", epochs=1, kind="locon", precision="fp32")
    tensors, _ = load_network(path)
    bare = save_network(tmp_path / "bare.safetensors", tensors, {}, precision=None, add_hashes=False)
    a = FileNetworks().network(views, LoraSpec(str(path)))
    b = FileNetworks().network(views, LoraSpec(str(bare)))
    with a.applied_to_model():
        first = _unet(views)
    with b.applied_to_model():
        second = _unet(views)
    assert torch.equal(first, second)
