"""Two inputs of one plan aiming at one name: planners pick another name or skip that input, never block the rest.

Real animated GIF/WebP files, captions and folders in a temp folder, applied and undone through ``bakery dataset``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lora_bakery.cli import main
from lora_bakery.extension.dataset import safety
from lora_bakery.extension.dataset.repeats import Balance, BalanceRow, Recipe, plan_renames
from lora_bakery.extension.dataset_ops import registry
from lora_bakery.extension.tagger.captions import plan_captions
from tests.extension.dataset.makers import animated, pattern, tree_digest


@pytest.fixture()
def root(tmp_path) -> Path:
    """``anim.gif`` + ``anim.webp`` (3 frames each, one shared caption), ``still.jpg`` + ``still.webp`` (one frame
    each, sharing ``still.txt``), and ``other.jpg`` that converts without any clash."""
    c = tmp_path / "train" / "1_a"
    animated(c / "anim.gif", "GIF")
    animated(c / "anim.webp", "WEBP")
    (c / "anim.txt").write_bytes(b"1girl, dancing\nline two\n")
    pattern(24, 16, seed=1).save(c / "still.jpg", quality=95)
    pattern(24, 16, seed=2).save(c / "still.webp", lossless=True)
    (c / "still.txt").write_text("1girl, standing", encoding="utf-8")
    pattern(20, 20, seed=3).save(c / "other.jpg", quality=95)
    return tmp_path / "train"


def test_convert_png_gif_and_webp_of_one_name(root, capsys):
    before = tree_digest(root)
    done = registry.preview(root, "convert-png")
    created = sorted(c.path for c in done.plan.changes if c.kind == "create")
    assert created == sorted([
        *(f"1_a/anim_f00{i}.png" for i in range(3)), *(f"1_a/anim_f00{i}.txt" for i in range(3)),
        *(f"1_a/anim_webp_f00{i}.png" for i in range(3)), *(f"1_a/anim_webp_f00{i}.txt" for i in range(3)),
        "1_a/still.png", "1_a/still_webp.png", "1_a/still_webp.txt", "1_a/other.png"])
    deletes = [c.path for c in done.plan.changes if c.kind == "delete"]
    assert deletes.count("1_a/anim.txt") == 1 and "1_a/still.txt" not in deletes  # still.png keeps still.txt
    # the whole plan applies: nothing "already exists", nothing blocks the other conversions
    assert main(["dataset", "prep", str(root), "convert-png", "--apply"]) == 0
    out = capsys.readouterr().out
    assert "already exists" not in out and "applied" in out
    c = root / "1_a"
    assert sorted(p.name for p in c.iterdir()) == sorted([
        *(f"anim_f00{i}.png" for i in range(3)), *(f"anim_f00{i}.txt" for i in range(3)),
        *(f"anim_webp_f00{i}.png" for i in range(3)), *(f"anim_webp_f00{i}.txt" for i in range(3)),
        "still.png", "still.txt", "still_webp.png", "still_webp.txt", "other.png"])
    assert (c / "anim_webp_f002.txt").read_bytes() == b"1girl, dancing\nline two\n"
    assert (c / "still_webp.txt").read_text(encoding="utf-8") == "1girl, standing"
    assert main(["dataset", "undo", str(root)]) == 0
    assert tree_digest(root) == before


def test_convert_with_a_leftover_frame_on_disk(root):
    Image.new("RGB", (8, 8)).save(root / "1_a" / "anim_f001.png")  # from an earlier, undone-by-hand run
    done = registry.preview(root, "convert-png")
    created = {c.path for c in done.plan.changes if c.kind == "create"}
    assert "1_a/anim_f001.png" not in created and "1_a/anim_gif_f000.png" in created
    safety.apply(done.plan, root)  # applies whole


def test_buckets_sort_shared_caption_and_taken_names(tmp_path, capsys):
    c = tmp_path / "train" / "1_a"
    c.mkdir(parents=True)
    pattern(64, 64, seed=1).save(c / "a.png")
    pattern(96, 48, seed=2).save(c / "a.jpg", quality=95)  # other bucket, same caption a.txt
    (c / "a.txt").write_text("1girl", encoding="utf-8")
    pattern(64, 64, seed=3).save(c / "b.png")
    (c / "b.txt").write_text("solo", encoding="utf-8")
    pattern(64, 64, seed=4).save(c / "d.png")
    bucket = c / "bucket_512x512"
    bucket.mkdir()
    Image.new("RGB", (8, 8)).save(bucket / "d.png")  # an earlier sort left a file of that name
    before = tree_digest(tmp_path / "train")
    assert main(["dataset", "buckets", str(tmp_path / "train"), "--sort", "--apply", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    assert "applied" in out and "shares its caption 1_a/a.txt" in out and "bucket_512x512/d.png already exists" in out
    # a.jpg (first by name) moved with the caption; a.png, bound for another bucket, stayed with a message
    moved = [p.relative_to(c).as_posix() for p in c.rglob("a.*") if p.parent != c]
    assert sorted(Path(m).suffix for m in moved) == [".jpg", ".txt"] and Path(moved[0]).parent == Path(moved[1]).parent
    assert (bucket / "b.png").is_file() and (bucket / "b.txt").is_file()
    assert (c / "a.png").is_file() and (c / "d.png").is_file()  # skipped, untouched
    assert main(["dataset", "undo", str(tmp_path / "train")]) == 0
    assert tree_digest(tmp_path / "train") == before


def test_duplicates_into_a_used_duplicates_folder(tmp_path):
    c = tmp_path / "train" / "1_a"
    c.mkdir(parents=True)
    pattern(64, 48, seed=1).save(c / "a.png")
    pattern(64, 48, seed=1).save(c / "a_copy.png")
    (c / "a_copy.txt").write_text("copy", encoding="utf-8")
    old = tmp_path / "train" / "_duplicates" / "1_a"
    old.mkdir(parents=True)
    (old / "a_copy.png").write_bytes(b"an earlier run's file")
    done = registry.preview(tmp_path / "train", "move-duplicates")
    moves = {c.path: c.new_path for c in done.plan.changes}
    assert moves == {"1_a/a_copy.png": "_duplicates/1_a/a_copy_dup.png", "1_a/a_copy.txt": "_duplicates/1_a/a_copy_dup.txt"}
    safety.apply(done.plan, tmp_path / "train")
    assert (old / "a_copy.png").read_bytes() == b"an earlier run's file"


def test_tagger_plan_for_two_images_of_one_caption(tmp_path):
    c = tmp_path / "1_a"
    c.mkdir()
    plan = plan_captions({c / "x.png": ["red"], c / "x.jpg": ["blue"], c / "y.png": ["green"]}, "overwrite")
    assert [Path(ch.path).name for ch in plan.changes] == ["x.txt", "y.txt"]
    assert "shares its caption file x.txt with x.png" in dict(plan.skipped)[str(c / "x.jpg")]
    safety.apply(plan, tmp_path)


def test_repeats_never_renames_onto_a_folder_that_stays(tmp_path):
    (tmp_path / "1_a").mkdir()
    (tmp_path / "3_a").mkdir()
    (tmp_path / "2_b").mkdir()
    rows = [BalanceRow("1_a", 10, "concept", 1, 3, "3_a", 30, 300, 30),
            BalanceRow("3_a", 10, "concept", 3, 3, "3_a", 30, 300, 30),
            BalanceRow("2_b", 10, "concept", 2, 5, "5_b", 50, 500, 50)]
    plan = plan_renames(Balance(Recipe(), rows, 110, 1100, []))
    assert [(c.path, c.new_path) for c in plan.changes] == [("2_b", "5_b")]
    assert "keeps its name" in dict(plan.skipped)["1_a"]
    safety.apply(plan, tmp_path)
