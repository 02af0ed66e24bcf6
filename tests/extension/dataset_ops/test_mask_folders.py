"""Mask folders: never a concept, never touched by an image tool, checked by the scan; a preview never installs.

Real images and masks in a temp folder, driven through ``bakery dataset`` as a user runs it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lora_bakery.cli import main
from lora_bakery.extension.dataset.scan import scan
from lora_bakery.extension.dataset_ops import registry
from lora_bakery.trainer.data import folders
from tests.extension.dataset.makers import pattern, tree_digest


def _mask(path: Path, size: tuple[int, int], value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.zeros((size[1], size[0]), np.uint8)
    a[size[1] // 4: 3 * size[1] // 4, size[0] // 4: 3 * size[0] // 4] = value
    Image.fromarray(a, "L").convert("RGB").save(path)


@pytest.fixture()
def root(tmp_path) -> Path:
    """``10_chara`` (a: good mask, b: all-black mask, c: no mask, d: mask of the wrong size, e: 48x40 to pad),
    ``masks/`` (flat, plus an orphan ``zz.png``), as the Masks tool writes it by default."""
    base = tmp_path / "train"
    chara = base / "10_chara"
    chara.mkdir(parents=True)
    for i, name in enumerate("abcd"):
        pattern(40, 40, seed=i).save(chara / f"{name}.png")
        (chara / f"{name}.txt").write_text(f"1girl, tag{i}", encoding="utf-8")
    pattern(48, 40, seed=9).save(chara / "e.png")
    _mask(base / "masks/a.png", (40, 40), 255)
    _mask(base / "masks/b.png", (40, 40), 0)
    _mask(base / "masks/d.png", (20, 30), 255)
    _mask(base / "masks/e.png", (48, 40), 255)
    _mask(base / "masks/zz.png", (40, 40), 255)
    return base


def test_one_rule_for_mask_folders():
    assert folders.is_mask_folder("masks") and folders.is_mask_folder("/data/train/Masks/")
    assert folders.is_mask_folder("mask") and not folders.is_mask_folder("10_masks")
    assert folders.is_skipped_dir("masks") and folders.excluded_dir_reason("masks").startswith("mask folder")
    assert not folders.is_skipped_dir("10_chara") and folders.excluded_dir_reason("10_chara") is None
    assert folders.in_mask_folder("masks/10_chara/a.png") and folders.in_mask_folder("10_chara/masks/a.png")
    assert not folders.in_mask_folder("10_chara/a.png") and not folders.in_mask_folder("masks.png")


def test_mask_folder_for_each_layout(tmp_path):
    (tmp_path / "10_a").mkdir()
    (tmp_path / "3_b").mkdir()
    assert folders.mask_folder_for(tmp_path, "10_a") is None
    _mask(tmp_path / "masks/x.png", (8, 8), 255)  # flat
    assert folders.mask_folder_for(tmp_path, "10_a") == tmp_path / "masks"
    _mask(tmp_path / "masks/10_a/x.png", (8, 8), 255)  # per concept wins over flat
    assert folders.mask_folder_for(tmp_path, "10_a") == tmp_path / "masks/10_a"
    _mask(tmp_path / "3_b/mask/x.png", (8, 8), 255)  # beside the images
    assert folders.mask_folder_for(tmp_path, "3_b") == tmp_path / "3_b/mask"
    assert folders.find_mask(tmp_path / "masks/10_a", "10_a/x.jpg") == tmp_path / "masks/10_a/x.png"


def test_scan_lists_no_masks_concept_and_reports_mask_problems(root, capsys):
    assert main(["dataset", "scan", str(root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [f["folder"] for f in data["folders"]] == ["10_chara"]  # no 'masks' concept
    assert data["images"] == 5
    assert data["mask_folders"] == [{"path": "masks", "masks": 5, "serves": ["10_chara"]}]
    by = {(p["code"], p["path"]) for p in data["problems"]}
    assert ("mask-black", "10_chara/b.png") in by
    assert ("mask-missing", "10_chara/c.png") in by
    assert ("mask-size", "10_chara/d.png") in by
    assert not any(path == "10_chara/a.png" for code, path in by if code.startswith("mask"))
    orphans = [p["message"] for p in data["problems"] if p["code"] == "mask-orphans"]
    assert len(orphans) == 1 and "zz.png" in orphans[0] and "a.png" not in orphans[0]
    assert not any("'masks'" in p["message"] for p in data["problems"])  # no folder-name complaint either
    # the text output says the same, messages whole
    assert main(["dataset", "scan", str(root)]) == 0
    out = capsys.readouterr().out
    assert "masks" not in out.split("\n\n")[0]  # the folder table
    assert "Mask folders (never trained as images" in out
    message = next(p["message"] for p in data["problems"] if p["code"] == "mask-size")
    assert len(message) > 90 and message in out
    # the facts are cached: a second scan reads no mask again and finds the same
    again = scan(root)
    assert {p.code for _f, im in again.images() for p in im.problems} >= {"mask-black", "mask-missing", "mask-size"}


def test_image_ops_never_touch_masks(root, capsys):
    before = {p: b for p, b in tree_digest(root).items() if p.startswith("masks/")}
    for op, params in (("pad-square", {}), ("trim", {}), ("convert-png", {}), ("remove-alpha", {}),
                       ("move-duplicates", {"include_similar": True})):
        done = registry.preview(root, op, params)
        touched = [c.path for c in done.plan.changes] + [c.new_path or "" for c in done.plan.changes]
        assert not any(folders.in_mask_folder(p) for p in touched), (op, touched)
    done = registry.preview(root, "pad-square", {})
    assert [c.path for c in done.plan.changes] == ["10_chara/e.png"]
    done = registry.preview(root, "sort-buckets", {})
    assert all(c.path.startswith("10_chara/") for c in done.plan.changes)
    # repeats --apply renames the concept folder only, never masks/ into '150_masks'
    assert main(["dataset", "repeats", str(root), "--apply"]) == 0
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert "masks" in names and not any(n.endswith("_masks") for n in names)
    assert main(["dataset", "undo", str(root)]) == 0
    capsys.readouterr()
    # naming a mask explicitly is refused with a message
    assert main(["dataset", "prep", str(root), "pad-square", "--paths", "masks/d.png"]) == 1
    assert "inside a mask folder" in capsys.readouterr().err
    assert {p: b for p, b in tree_digest(root).items() if p.startswith("masks/")} == before


def test_tagging_never_tags_masks(root, tmp_path):
    from lora_bakery.extension.tagger.tiny import write_tiny_tagger

    model = write_tiny_tagger(tmp_path / "tagger", "v2", fixed_batch=True, size=32)
    done = registry.preview(root, "tag", {"models": str(model), "download": False, "mode": "overwrite"})
    paths = [Path(c.path).as_posix() for c in done.plan.changes]
    assert len(paths) == 5 and not any("/masks/" in p for p in paths)


def test_mask_folder_must_be_a_mask_folder(root):
    class Remover:
        def process(self, img, type="rgba", **kw):  # noqa: A002
            return img.convert("L")

    with pytest.raises(ValueError, match="only a folder named mask or masks"):
        registry.preview(root, "masks", {"mask_dir": "10_chara_masks", "remover": Remover()})
    with pytest.raises(ValueError, match="inside the training folder"):
        registry.preview(root, "masks", {"mask_dir": "../elsewhere", "remover": Remover()})
    done = registry.preview(root, "masks", {"mask_dir": "masks/10_chara", "remover": Remover()})
    assert {c.path for c in done.plan.changes} == {f"masks/10_chara/{n}.png" for n in "abcde"}


def test_masks_preview_without_the_package_installs_nothing(root, monkeypatch, capsys):
    """``bakery dataset masks ROOT`` (a dry run) says what is missing and how to install it; pip never runs."""
    pytest.importorskip("PIL")
    import importlib.util

    if importlib.util.find_spec("transparent_background") is not None:
        pytest.skip("transparent-background is installed here")
    from lora_bakery import deps_install

    def refuse(*a, **k):
        raise AssertionError("a preview tried to install packages")

    monkeypatch.setattr(deps_install, "run_install", refuse)
    monkeypatch.setattr(deps_install, "ensure_feature", refuse)
    before = tree_digest(root)
    assert main(["dataset", "masks", str(root)]) == 1
    err = capsys.readouterr().err
    assert "transparent-background" in err and "bakery doctor --install masks" in err
    assert "Install the masks feature" in err and "nothing was installed" in err
    assert main(["dataset", "masks", str(root), "--apply"]) == 1  # nor does an apply install behind the user's back
    assert "bakery doctor --install masks" in capsys.readouterr().err
    assert tree_digest(root) == before


def test_install_happens_only_on_request_and_says_what(monkeypatch, capsys):
    """``bakery doctor --install masks`` prints what it will install before installing (pip itself is not run here:
    the test environments must not change)."""
    import importlib.util

    from lora_bakery.extension.dataset import masks

    if importlib.util.find_spec("transparent_background") is not None:
        pytest.skip("transparent-background is installed here")
    assert "transparent-background" in masks.install_plan()
    calls = []

    def fake_install(log=None):
        calls.append(capsys.readouterr().out)  # what the user had been told when the install started
        return False, "offline"

    monkeypatch.setattr(masks, "install_feature", fake_install)
    assert main(["doctor", "--install", "masks"]) == 1
    assert calls and "installing the 'masks' feature: transparent-background" in calls[0]
    assert "masks: unavailable (offline)" in capsys.readouterr().out


def test_repeats_renames_per_concept_masks_along(tmp_path, capsys):
    base = tmp_path / "train"
    for name in "ab":
        (base / "1_chara").mkdir(parents=True, exist_ok=True)
        pattern(40, 40, seed=ord(name)).save(base / "1_chara" / f"{name}.png")
        _mask(base / "masks" / "1_chara" / f"{name}.png", (40, 40), 255)
    done = registry.preview(base, "repeats")
    (row,) = done.extra["rows"]
    assert row["new_name"] != "1_chara"
    moves = {c.path: c.new_path for c in done.plan.changes}
    assert moves == {"1_chara": row["new_name"], "masks/1_chara": f"masks/{row['new_name']}"}
    assert main(["dataset", "repeats", str(base), "--apply"]) == 0
    result = scan(base)
    assert [m.path for m in result.mask_folders] == [f"masks/{row['new_name']}"]
    assert not [p for p in result.problems if p.code.startswith("mask")]
    assert main(["dataset", "undo", str(base)]) == 0
    assert (base / "masks" / "1_chara" / "a.png").is_file()
