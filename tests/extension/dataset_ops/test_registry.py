"""Every named operation on a real, messy folder: preview writes nothing, apply changes, undo restores byte for byte."""

from __future__ import annotations

import pytest

from lora_bakery.extension.dataset.safety import SafetyError
from lora_bakery.extension.dataset.scan import scan
from lora_bakery.extension.dataset_ops import caption_ops, registry, report
from lora_bakery.extension.dataset_ops.captions import load_captions
from lora_bakery.extension.tagger.tiny import write_tiny_tagger
from tests.extension.dataset_ops.helpers import make_colour_dataset, make_dataset, tree_digest

# (operation, params, expected kinds of change)
CASES = [
    ("convert-png", {}, {"create", "delete"}),
    ("remove-alpha", {"color": "#000000"}, {"write"}),
    ("trim", {"fuzz": 10}, None),
    ("pad-square", {"color": "255,0,0"}, {"write"}),
    ("move-duplicates", {}, {"move"}),
    ("sort-buckets", {"family": "sd15"}, {"move"}),
    ("repeats", {"optimizer": "adamw", "family": "sdxl"}, {"rename"}),
    ("add-triggers", {"triggers": "chara, extra"}, {"write"}),
    ("remove-tags", {"patterns": "1girl, re:.*_hair"}, {"write"}),
    ("replace-tags", {"mapping": "smile=grin; meme="}, {"write"}),
    ("consolidate", {}, {"write"}),
    ("remove-useless", {}, {"write"}),
    ("prune-traits", {"trigger": "chara"}, {"write"}),
    ("prune-outfit", {"all_of": "kimono"}, {"write"}),
    ("sort-tags", {}, {"write"}),
    ("rewrite-utf8", {}, {"write"}),
]


@pytest.fixture()
def dataset(tmp_path):
    return make_dataset(tmp_path / "train")


@pytest.mark.parametrize(("op", "params", "kinds"), CASES, ids=[c[0] for c in CASES])
def test_preview_apply_undo_round_trip(dataset, op, params, kinds):
    before = tree_digest(dataset)
    done = registry.preview(dataset, op, params)
    assert tree_digest(dataset) == before, "a preview must not touch any file"
    if kinds is None and not done.plan.changes:
        return
    assert done.plan.changes, f"{op}: expected changes, got {registry.preview_dict(done)}"
    if kinds is not None:
        assert {c.kind for c in done.plan.changes} <= kinds
    applied, record = registry.apply(dataset, op, params)
    assert applied.summary == done.summary
    assert tree_digest(dataset) != before
    assert registry.backup_rows(dataset)[0]["name"] == record.path.name
    registry.undo(dataset)
    assert tree_digest(dataset) == before, "undo must restore every file byte for byte"


def test_caption_ops_skip_non_utf8_empty_and_missing_captions(dataset):
    done = registry.preview(dataset, "add-triggers", {"triggers": "chara"})
    written = {c.path for c in done.plan.changes}
    skipped = dict(done.plan.skipped)
    assert written == {"10_chara/a.txt", "10_chara/a_copy.txt", "10_chara/c.txt", "3_outfit/e.txt"}
    assert "not UTF-8" in skipped["10_chara/b.txt"]
    assert "no caption file" in skipped["10_chara/d.txt"]
    created = registry.preview(dataset, "add-triggers", {"triggers": "chara", "create_missing": True})
    assert "10_chara/d.txt" in {c.path for c in created.plan.changes if c.kind == "create"}


def test_filter_limits_the_set_and_triggers_come_first(dataset):
    registry.apply(dataset, "add-triggers", {"triggers": "chara", "all_of": "smile"})
    assert (dataset / "10_chara/a.txt").read_text() == "chara, ||| 1girl, red_hair, shirt, white_shirt, meme, smile"
    assert (dataset / "3_outfit/e.txt").read_text() == "1girl, kimono, obi, sandals"
    registry.apply(dataset, "sort-tags", {"triggers": "chara"})
    assert (dataset / "10_chara/a.txt").read_text().startswith("chara, ||| ")


def test_rules_are_proposed_and_can_be_skipped(dataset):
    done = registry.preview(dataset, "consolidate", {})
    rules = [r["rule"] for r in done.extra["rules"]]
    assert "shirt → (removed) where white_shirt" in rules
    skipped = registry.preview(dataset, "consolidate", {"skip_rules": rules})
    assert not skipped.plan.changes
    pruned = registry.preview(dataset, "prune-traits", {"trigger": "chara"})
    assert any(r["rule"].startswith("red_hair") for r in pruned.extra["rules"])
    assert pruned.extra["diffs"]["10_chara/a.png"].startswith("-red_hair")


def test_rewrite_utf8_then_edit(dataset):
    registry.apply(dataset, "rewrite-utf8", {})
    assert (dataset / "10_chara/b.txt").read_text(encoding="utf-8") == "1girl, café, blue_eyes"
    done = registry.preview(dataset, "remove-tags", {"patterns": "café"})
    assert "10_chara/b.txt" in {c.path for c in done.plan.changes}


@pytest.mark.parametrize(("op", "params", "message"), [
    ("nope", {}, "unknown operation"),
    ("add-triggers", {}, "at least one trigger"),
    ("replace-tags", {"mapping": "no pair here"}, "old=new"),
    ("remove-tags", {"patterns": "re:(["}, "regular expression"),
    ("prune-traits", {}, "character trigger"),
    ("trim", {"fuzz": "lots"}, "fuzz"),
    ("pad-square", {"color": "not-a-colour"}, "colour"),
    ("sort-buckets", {"family": "sd3"}, "family"),
    ("repeats", {"optimizer": "sgd"}, "optimizer"),
])
def test_bad_options_are_readable_errors(dataset, op, params, message):
    before = tree_digest(dataset)
    with pytest.raises(ValueError, match=message):
        registry.preview(dataset, op, params)
    assert tree_digest(dataset) == before


def test_missing_folder_nothing_to_apply_nothing_to_undo(tmp_path, dataset):
    with pytest.raises(ValueError, match="does not exist"):
        registry.preview(tmp_path / "nowhere", "trim", {})
    with pytest.raises(SafetyError, match="nothing to undo"):
        registry.undo(dataset)
    with pytest.raises(SafetyError, match="nothing to change"):
        registry.apply(dataset, "remove-tags", {"patterns": "not_there"})
    with pytest.raises(SafetyError, match="no backup named"):
        registry.undo(dataset, "20000101-missing")


def test_undo_refuses_when_a_caption_changed_since(dataset):
    registry.apply(dataset, "add-triggers", {"triggers": "chara"})
    (dataset / "10_chara/a.txt").write_text("edited by hand", encoding="utf-8")
    with pytest.raises(SafetyError, match="changed after the apply"):
        registry.undo(dataset)
    assert (dataset / "10_chara/a.txt").read_text() == "edited by hand"


def test_tag_with_tiny_tagger_then_undo(tmp_path):
    root = make_colour_dataset(tmp_path / "train")
    model = write_tiny_tagger(tmp_path / "tagger", "v3", size=32)
    before = tree_digest(root)
    done, _rec = registry.apply(root, "tag", {"models": str(model), "download": False})
    assert done.extra["tagged"] == 4
    assert "red theme" in (root / "5_colours/red.txt").read_text()
    assert "hakurei reimu" in (root / "5_colours/red.txt").read_text()
    again = registry.preview(root, "tag", {"models": str(model)})  # skip mode: captions exist now
    assert not again.plan.changes and again.extra["tagged"] == 0
    registry.undo(root)
    assert tree_digest(root) == before


def test_scan_report_counts_and_problems(dataset):
    result = scan(dataset)
    rows = {r["folder"]: r for r in report.folder_rows(result)}
    assert rows["10_chara"]["images"] == 5 and rows["10_chara"]["repeats"] == 10
    assert rows["3_outfit"]["steps_per_epoch"] == 3
    codes = {p["code"] for p in report.problem_rows(result)}
    assert {"zero-byte", "bomb", "unreadable", "caption-encoding", "caption-missing", "alpha"} <= codes
    assert report.problem_rows(result)[0]["level"] == "error"
    data = report.scan_dict(result)
    assert data["images"] == result.image_count and data["problem_counts"]["error"] >= 3
    assert "images" in report.scan_markdown(result)
    assert "10_chara" in report.format_table(report.folder_rows(result))


def test_caption_set_and_mapping_helpers(dataset):
    cs = load_captions(scan(dataset))
    assert cs.texts["10_chara/a.png"].startswith("1girl")
    assert "10_chara/d.jpg" in cs.missing and cs.encodings["10_chara/b.png"] == "cp1252"
    assert caption_ops.parse_mapping("a=b; c = d, e\nf=") == {"a": "b", "c": "d, e", "f": ""}
    assert caption_ops.as_list(" a, b\nc ,") == ["a", "b", "c"]
    assert caption_ops.rule_names("x, y → z\nw") == {"x, y → z", "w"}
