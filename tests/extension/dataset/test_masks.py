"""Mask pipeline with a stand-in remover that computes a real map from the pixels (luminance threshold)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from lora_bakery.extension.dataset import masks, safety

from . import makers as mk


class LumaRemover:
    """Same interface as transparent_background.Remover: dark pixels are 'subject' (255), light are background."""

    def __init__(self, soft: bool = False):
        self.soft = soft
        self.calls = []

    def process(self, img, type="rgba", threshold=None, reverse=False):  # noqa: A002
        assert type == "map" and isinstance(img, Image.Image) and img.mode == "RGB"
        self.calls.append(img.size)
        y = np.asarray(img.convert("L"), dtype=np.float64)
        m = (255 - y) if self.soft else np.where(y < 128, 255, 0)
        return Image.fromarray(np.stack([m.astype(np.uint8)] * 3, -1), "RGB")  # 3-channel map like the real one


def _subject(path, size=(40, 30)):
    a = np.full((size[1], size[0], 3), 240, np.uint8)
    a[8:22, 10:30] = 20
    return mk.save(Image.fromarray(a), path)


def test_masks_same_names_flags_and_undo(tmp_path):
    _subject(tmp_path / "10_a" / "good.png")
    mk.save(Image.new("RGB", (20, 20), "white"), tmp_path / "10_a" / "blank.jpg")
    mk.save(Image.new("RGB", (20, 20), (128, 128, 128)), tmp_path / "10_a" / "grey.png")
    mk.rgba_png(tmp_path / "10_a" / "alpha.png")
    (tmp_path / "10_a" / "broken.png").write_bytes(b"")
    imgs = ["10_a/good.png", "10_a/blank.jpg", "10_a/grey.png", "10_a/alpha.png", "10_a/broken.png"]
    before = mk.tree_digest(tmp_path)
    plan, results = masks.plan_masks(tmp_path, imgs, "masks/10_a", LumaRemover())
    by = {r.image: r for r in results}
    assert by["10_a/good.png"].mask == "masks/10_a/good.png" and by["10_a/good.png"].flags == []
    assert by["10_a/good.png"].coverage == pytest.approx(14 * 20 / (40 * 30))
    assert any("all black" in f for f in by["10_a/blank.jpg"].flags)
    assert "no mask" in dict(plan.skipped)["10_a/broken.png"]
    m = Image.open(io.BytesIO(next(c.new_bytes for c in plan.changes if c.path == "masks/10_a/good.png")))
    assert m.size == (40, 30) and np.asarray(m)[15, 20, 0] == 255 and np.asarray(m)[0, 0, 0] == 0
    rec = safety.apply(plan, tmp_path)
    assert (tmp_path / "masks" / "10_a" / "blank.png").exists()
    # second run skips existing masks unless overwrite
    plan2, _ = masks.plan_masks(tmp_path, ["10_a/good.png"], "masks/10_a", LumaRemover())
    assert not plan2.changes and "already exists" in plan2.skipped[0][1]
    plan3, _ = masks.plan_masks(tmp_path, ["10_a/good.png"], "masks/10_a", LumaRemover(), overwrite=True)
    assert plan3.changes[0].kind == "write"
    safety.undo(rec)
    assert mk.tree_digest(tmp_path) == before


def test_mostly_grey_flag():
    soft = np.full((10, 10), 128, np.uint8)
    flags, _ = masks.mask_flags(soft)
    assert any("mostly grey" in f for f in flags)
    flags, cov = masks.mask_flags(np.full((10, 10), 255, np.uint8))
    assert any("all white" in f for f in flags) and cov == 1.0


def test_same_stem_images_do_not_share_a_mask(tmp_path):
    _subject(tmp_path / "1_a" / "x.png")
    _subject(tmp_path / "1_a" / "x.jpg")
    plan, results = masks.plan_masks(tmp_path, ["1_a/x.png", "1_a/x.jpg"], "masks", LumaRemover())
    assert len(results) == 1 and "same name" in plan.skipped[0][1]


def test_numpy_float_map_is_accepted(tmp_path):
    _subject(tmp_path / "1_a" / "x.png")

    class FloatRemover:
        def process(self, img, type="rgba", **kw):  # noqa: A002
            return np.ones((img.height // 2, img.width // 2, 3), np.float32)  # other size, 0..1 floats

    plan, results = masks.plan_masks(tmp_path, ["1_a/x.png"], "masks", FloatRemover())
    assert results[0].coverage == 1.0


def test_real_transparent_background_if_installed(tmp_path):
    tb = pytest.importorskip("transparent_background", reason="transparent-background is an optional install")
    ckpt = os.environ.get("BAKERY_TB_CKPT")
    if not ckpt:
        pytest.skip("set BAKERY_TB_CKPT to a local ckpt_base.pth to run the real remover offline")
    _subject(tmp_path / "1_a" / "x.png", (256, 256))
    remover = tb.Remover(ckpt=ckpt, device="cpu")
    plan, results = masks.plan_masks(tmp_path, ["1_a/x.png"], "masks", remover)
    assert results and plan.changes


def test_local_checkpoint_must_be_plain_weights(tmp_path, monkeypatch):
    """A crafted pickle is refused before transparent-background (or its install) is ever touched."""
    import pickle

    import torch

    from lora_bakery import deps

    monkeypatch.setattr(deps, "ensure_installed", lambda *a, **k: pytest.fail("must refuse before installing"))
    good = tmp_path / "ckpt_base.pth"
    torch.save({"layer.weight": torch.ones(2, 2)}, good)
    masks.check_checkpoint(good)  # plain weights pass

    ran = tmp_path / "ran.txt"

    class Payload:
        def __reduce__(self):
            return (open, (str(ran), "w"))

    bad = tmp_path / "evil.pth"
    bad.write_bytes(pickle.dumps({"layer.weight": Payload()}))
    with pytest.raises(ValueError, match="not a plain-weights checkpoint"):
        masks.default_remover(ckpt=bad)
    assert not ran.exists()  # the payload never ran
    with pytest.raises(FileNotFoundError, match="not found"):
        masks.default_remover(ckpt=tmp_path / "missing.pth")
