"""``bakery dataset ...`` and ``bakery tag`` on real folders: dry run by default, --apply changes, undo restores."""

from __future__ import annotations

import json

import pytest

from lora_bakery.cli import main
from lora_bakery.extension.tagger.tiny import write_tiny_tagger
from tests.extension.dataset_ops.helpers import make_colour_dataset, make_dataset, tree_digest


@pytest.fixture()
def dataset(tmp_path):
    return make_dataset(tmp_path / "train")


def test_scan_prints_folders_and_problems(dataset, capsys):
    assert main(["dataset", "scan", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "10_chara" in out and "3_outfit" in out
    assert "zero-byte" in out and "caption-encoding" in out and "bomb" in out
    assert main(["dataset", "scan", str(dataset), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["images"] == 10 and {f["folder"] for f in data["folders"]} >= {"10_chara", "3_outfit"}


def test_captions_dry_run_then_apply_then_undo(dataset, capsys):
    before = tree_digest(dataset)
    assert main(["dataset", "captions", str(dataset), "add-triggers", "--triggers", "chara"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "10_chara/a.txt" in out
    assert tree_digest(dataset) == before
    assert main(["dataset", "captions", str(dataset), "add-triggers", "--triggers", "chara", "--apply"]) == 0
    assert "applied; backup" in capsys.readouterr().out
    assert (dataset / "10_chara/a.txt").read_text().startswith("chara, ||| 1girl")
    assert main(["dataset", "captions", str(dataset), "remove-tags", "--patterns", "meme", "--apply"]) == 0
    assert "meme" not in (dataset / "10_chara/a.txt").read_text()
    capsys.readouterr()
    assert main(["dataset", "backups", str(dataset), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["op"] for r in rows] == ["remove-tags", "add-triggers"]
    assert main(["dataset", "undo", str(dataset)]) == 0
    assert main(["dataset", "undo", str(dataset), "--backup", rows[1]["name"]]) == 0
    assert "Undone" in capsys.readouterr().out
    assert tree_digest(dataset) == before


def test_rule_ops_print_rules_and_filters(dataset, capsys):
    assert main(["dataset", "captions", str(dataset), "consolidate"]) == 0
    assert "shirt → (removed) where white_shirt" in capsys.readouterr().out
    assert main(["dataset", "captions", str(dataset), "prune-outfit", "--all", "kimono", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["changes"] == 1 and any("outfit trigger" in n for n in data["notes"])


def test_image_ops_dupes_buckets_repeats(dataset, capsys):
    before = tree_digest(dataset)
    assert main(["dataset", "prep", str(dataset), "remove-alpha", "--apply"]) == 0
    assert main(["dataset", "dupes", str(dataset), "--apply"]) == 0
    assert (dataset / "_duplicates/10_chara/a_copy.png").is_file()
    assert main(["dataset", "buckets", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "576x448" in out and "needs upscale" in out
    views = dataset.parent / "views"
    assert main(["dataset", "buckets", str(dataset), "--views", str(views)]) == 0
    written = sorted(p.name for p in views.iterdir())
    assert written and f"wrote {len(written)} trainer view(s)" in capsys.readouterr().out
    assert any(name.endswith("_576x448.png") for name in written)
    assert main(["dataset", "buckets", str(dataset), "--views", str(views)]) == 1  # never overwrites
    assert main(["dataset", "buckets", str(dataset), "--views", str(dataset / "10_chara" / "v")]) == 1  # not inside
    assert not (dataset / "10_chara" / "v").exists()
    capsys.readouterr()
    assert main(["dataset", "repeats", str(dataset), "--role", "3_outfit=subconcept", "--apply"]) == 0
    out = capsys.readouterr().out
    assert "new_name" in out and "applied" in out
    assert not (dataset / "10_chara").exists()
    for _ in range(3):
        assert main(["dataset", "undo", str(dataset)]) == 0
    assert tree_digest(dataset) == before


def test_user_errors_are_one_line(dataset, tmp_path, capsys):
    assert main(["dataset", "scan", str(tmp_path / "nowhere")]) == 1
    assert "error:" in capsys.readouterr().err
    assert main(["dataset", "captions", str(dataset), "replace-tags", "--mapping", "oops"]) == 1
    assert "old=new" in capsys.readouterr().err
    assert main(["dataset", "undo", str(dataset)]) == 1
    assert "nothing to undo" in capsys.readouterr().err
    assert main(["dataset", "captions", str(dataset), "remove-tags", "--patterns", "absent", "--apply"]) == 1
    assert "nothing to change" in capsys.readouterr().err
    assert main(["tag", str(dataset), "--model", str(tmp_path / "no-model"), "--offline"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_tag_preview_apply_and_undo_with_the_tiny_tagger(tmp_path, capsys):
    root = make_colour_dataset(tmp_path / "train")
    model = write_tiny_tagger(tmp_path / "tagger", "v2", fixed_batch=True, size=32)
    before = tree_digest(root)
    assert main(["tag", str(root), "--model", str(model), "--offline"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "tagged 4 image(s)" in out
    assert tree_digest(root) == before
    assert main(["tag", str(root), "--model", str(model), "--exclude", "1girl", "--apply"]) == 0
    text = (root / "5_colours/green.txt").read_text()
    assert "green theme" in text and "1girl" not in text
    assert main(["dataset", "undo", str(root)]) == 0
    assert tree_digest(root) == before


def test_demo_dataset_stage(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--only", "dataset"]) == 0
    stage = json.loads((out / "summary.json").read_text())["stages"]["dataset"]
    assert stage["status"] == "ok", stage
    assert stage["images"] == 6 and stage["tagged"] == 6 and stage["tags"] >= 5
    assert stage["folder"].endswith("_concept") and stage["folder"] != "10_concept"
    captions = [p for p in stage["outputs"] if p.endswith(".txt")]
    assert len(captions) == 6 and all((out / p).is_file() for p in stage["outputs"])
    assert all((out / p).read_text().startswith("bakery_concept, ||| ") for p in captions)


def test_help_lists_dataset_and_tag(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "dataset" in out and "tag" in out
