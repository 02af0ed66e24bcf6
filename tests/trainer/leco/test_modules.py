"""Module sets select what their names say (LECO#30: xattn/selfattn built nothing there)."""

from __future__ import annotations

import pytest

from lora_bakery.trainer.leco import LecoNetwork, build_slider_network, select_targets
from lora_bakery.trainer.leco.modules import transformer_paths

from .helpers import tiny_host


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_module_sets(arch: str) -> None:
    views = tiny_host(arch).views()
    paths = transformer_paths(views.unet)
    chosen = {s: select_targets(views, LecoNetwork(modules=s)) for s in ("full", "xattn", "noxattn", "selfattn")}
    names = {s: {t.name for t in targets} for s, targets in chosen.items()}
    assert all(names.values()), {s: len(n) for s, n in names.items()}
    assert names["xattn"] | names["noxattn"] == names["full"]
    assert not names["xattn"] & names["noxattn"]
    assert names["selfattn"] < names["noxattn"]
    assert all(".attn2." in "." + paths[id(t.module)] + "." for t in chosen["xattn"])
    assert all(".attn1." in "." + paths[id(t.module)] + "." for t in chosen["selfattn"])
    assert {paths[id(t.module)].rsplit(".", 1)[-1] for t in chosen["xattn"]} == {"to_q", "to_k", "to_v", "0"}


def test_convs_join_any_set() -> None:
    views = tiny_host().views()
    plain = select_targets(views, LecoNetwork(modules="xattn"))
    with_convs = select_targets(views, LecoNetwork(modules="xattn", conv_dim=2))
    assert any(t.conv3x3 for t in with_convs) and len(with_convs) > len(plain)


def test_network_is_unet_only_and_seeded() -> None:
    views = tiny_host().views()
    a = build_slider_network(views, LecoNetwork(modules="xattn", dim=8, alpha=4), seed=5)
    b = build_slider_network(views, LecoNetwork(modules="xattn", dim=8, alpha=4), seed=5)
    assert all(name.startswith("lora_unet_") for name in a.kohya_state_dict())
    for key, value in a.kohya_state_dict().items():
        assert value.equal(b.kohya_state_dict()[key]), key
    assert a.metadata()["ss_network_dim"] == "8" and a.metadata()["ss_network_alpha"] == "4.0"
