"""Duplicates: exact and near groups on real files, flips, keeper choice, move plan and undo."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from lora_bakery.extension.dataset import duplicates as dup
from lora_bakery.extension.dataset import safety

from . import makers as mk


def _photo(seed: int, size=(160, 120)) -> Image.Image:
    """A smooth random 'photo' (blurred noise) so hashes are stable under resizing and JPEG."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(a).resize(size, Image.BICUBIC)


def test_hashes_behave_like_imagehash():
    a = _photo(1)
    assert dup.hamming(dup.phash(a), dup.phash(a.resize((80, 60)))) <= 2
    assert dup.hamming(dup.phash(a), dup.phash(_photo(2))) > 16
    assert dup.hamming(dup.dhash(a), dup.dhash(a.resize((80, 60)))) <= 4
    assert dup.sharpness(a) > dup.sharpness(a.filter(ImageFilter.GaussianBlur(3)))


def test_groups_keeper_and_move_plan_with_undo(tmp_path):
    c = tmp_path / "1_a"
    base = _photo(1, (320, 240))
    mk.save(base, c / "big.png")
    (c / "big.txt").write_text("keep me")
    mk.save(base.resize((160, 120)), c / "small.png")
    (c / "small.txt").write_text("small caption")
    mk.save(base.resize((160, 120)).filter(ImageFilter.GaussianBlur(1)), c / "blurry.png")
    (c / "exact.png").write_bytes((c / "big.png").read_bytes())
    mk.save(base.transpose(Image.FLIP_LEFT_RIGHT), c / "mirror.png")
    mk.save(_photo(7), c / "other.png")
    padded = Image.new("RGB", (400, 300), "white")
    padded.paste(base.resize((200, 150)), (100, 75))
    mk.save(padded, c / "padded.png")
    paths = [p.relative_to(tmp_path).as_posix() for p in sorted(c.glob("*.png"))]

    rep = dup.find_duplicates(tmp_path, paths)
    members = {m.path for g in rep.groups for m in g.members}
    assert "1_a/other.png" not in members and "1_a/mirror.png" not in members
    main = next(g for g in rep.groups if "1_a/small.png" in [m.path for m in g.members])
    assert {"1_a/big.png", "1_a/exact.png", "1_a/small.png", "1_a/blurry.png", "1_a/padded.png"} <= {m.path for m in main.members}
    assert main.keeper in ("1_a/big.png", "1_a/padded.png")

    flipped = dup.find_duplicates(tmp_path, paths, flips=True)
    assert any("1_a/mirror.png" in [m.path for m in g.members] for g in flipped.groups)

    before = mk.tree_digest(tmp_path)
    plan = dup.plan_move_duplicates(tmp_path, rep)
    moved = {c.path for c in plan.changes}
    assert "1_a/small.txt" in moved and main.keeper not in moved
    rec = safety.apply(plan, tmp_path)
    assert (tmp_path / "_duplicates" / "1_a" / "small.png").exists()
    safety.undo(rec)
    assert mk.tree_digest(tmp_path) == before


def test_exact_only_group_and_keeper_prefers_sharp(tmp_path):
    a = _photo(3)
    mk.save(a, tmp_path / "1_a" / "sharp.png")
    mk.save(a.filter(ImageFilter.GaussianBlur(1.5)), tmp_path / "1_a" / "soft.png")
    (tmp_path / "1_a" / "copy.png").write_bytes((tmp_path / "1_a" / "soft.png").read_bytes())
    rep = dup.find_duplicates(tmp_path, ["1_a/soft.png", "1_a/copy.png"])
    assert [g.kind for g in rep.groups] == ["exact"]
    rep2 = dup.find_duplicates(tmp_path, ["1_a/soft.png", "1_a/sharp.png"])
    assert rep2.groups[0].keeper == "1_a/sharp.png"


def test_unreadable_files_are_reported(tmp_path):
    (tmp_path / "1_a").mkdir()
    (tmp_path / "1_a" / "bad.png").write_bytes(b"nope")
    mk.bomb_png(tmp_path / "1_a" / "bomb.png")
    rep = dup.find_duplicates(tmp_path, ["1_a/bad.png", "1_a/bomb.png"])
    assert {p for p, _ in rep.unreadable} == {"1_a/bad.png", "1_a/bomb.png"} and rep.groups == []


def test_same_stem_caption_stays_with_keeper(tmp_path):
    a = _photo(5)
    mk.save(a, tmp_path / "1_a" / "x.png")
    mk.save(a, tmp_path / "1_a" / "x.jpg", quality=95)
    (tmp_path / "1_a" / "x.txt").write_text("cap")
    rep = dup.find_duplicates(tmp_path, ["1_a/x.png", "1_a/x.jpg"])
    plan = dup.plan_move_duplicates(tmp_path, rep)
    assert "1_a/x.txt" not in {c.path for c in plan.changes}
