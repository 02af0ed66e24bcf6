"""Plan → apply (backup, all-or-nothing) → undo restores byte-identical files."""

from __future__ import annotations

import json
import os

import pytest

from lora_bakery.extension.dataset import safety
from lora_bakery.extension.dataset.safety import Change, Plan, SafetyError

from .makers import pattern, save, tree_digest


@pytest.fixture
def root(tmp_path):
    save(pattern(16, 16), tmp_path / "10_a" / "x.png")
    (tmp_path / "10_a" / "x.txt").write_bytes(b"1girl, solo")
    (tmp_path / "10_a" / "y.txt").write_bytes("caf\xe9".encode("cp1252"))
    return tmp_path


def test_apply_then_undo_is_byte_identical(root):
    before = tree_digest(root)
    plan = Plan("demo", [
        Change("10_a/x.txt", "write", new_bytes=b"trigger, 1girl, solo"),
        Change("10_a/new.txt", "create", new_bytes=b"new"),
        Change("10_a/y.txt", "delete"),
        Change("10_a/x.png", "move", new_path="_duplicates/10_a/x.png"),
        Change("10_a", "rename", new_path="3_a"),
    ])
    rows = safety.preview(plan)
    assert [r["kind"] for r in rows] == ["write", "create", "delete", "move", "rename"]
    assert tree_digest(root) == before  # preview touches nothing
    rec = safety.apply(plan, root)
    after = tree_digest(root)
    assert after["3_a/x.txt"] != before["10_a/x.txt"] and "3_a/new.txt" in after and "_duplicates/10_a/x.png" in after
    assert (rec.path / "manifest.json").is_file()
    safety.undo(rec)
    assert tree_digest(root) == before
    assert safety.list_backups(root)[0].status == "undone"


def test_failure_midway_rolls_back_everything(root, monkeypatch):
    before = tree_digest(root)
    real = safety._do
    calls = []

    def flaky(root_, c, rel, new_rel):
        calls.append(rel)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        return real(root_, c, rel, new_rel)

    monkeypatch.setattr(safety, "_do", flaky)  # the fault injector, not the thing under test
    plan = Plan("boom", [Change("10_a/x.txt", "write", new_bytes=b"zzz"), Change("10_a/y.txt", "delete"),
                         Change("10_a/new.txt", "create", new_bytes=b"n")])
    with pytest.raises(SafetyError, match="rolled back"):
        safety.apply(plan, root)
    assert tree_digest(root) == before
    assert safety.list_backups(root)[0].status == "rolled-back"


@pytest.mark.parametrize(("change", "needle"), [
    (Change("10_a/x.txt", "create", new_bytes=b"x"), "never overwrites"),
    (Change("10_a/x.png", "rename", new_path="10_a/x.txt"), "never renames over"),
    (Change("10_a/missing.txt", "write", new_bytes=b"x"), "does not exist"),
    (Change("10_a/missing.txt", "delete"), "does not exist"),
    (Change("../outside.txt", "create", new_bytes=b"x"), "outside the training folder"),
    (Change(".bakery/scan-cache.json", "create", new_bytes=b"x"), ".bakery"),
])
def test_invalid_plans_are_refused_before_touching_anything(root, change, needle):
    before = tree_digest(root)
    with pytest.raises(SafetyError, match=needle):
        safety.apply(Plan("bad", [Change("10_a/x.txt", "write", new_bytes=b"changed"), change]), root)
    assert tree_digest(root) == before
    assert safety.list_backups(root) == []


def test_undo_refuses_when_file_edited_after_apply(root):
    rec = safety.apply(Plan("w", [Change("10_a/x.txt", "write", new_bytes=b"a")]), root)
    (root / "10_a" / "x.txt").write_bytes(b"user edit")
    with pytest.raises(SafetyError, match="changed after the apply"):
        safety.undo(rec)
    assert (root / "10_a" / "x.txt").read_bytes() == b"user edit"
    safety.undo(rec, force=True)
    assert (root / "10_a" / "x.txt").read_bytes() == b"1girl, solo"
    with pytest.raises(SafetyError, match="only an applied"):
        safety.undo(rec.path)


def test_forced_undo_backs_up_the_later_edits_and_can_be_undone(root):
    """A forced undo never loses the user's later edit: it is backed up first, and undoing the undo restores it."""
    plan = Plan("mixed", [Change("10_a/x.txt", "write", new_bytes=b"op wrote this"),
                          Change("10_a/new.txt", "create", new_bytes=b"op created this"),
                          Change("10_a/y.txt", "delete")])
    before = tree_digest(root)
    rec = safety.apply(plan, root)
    (root / "10_a" / "x.txt").write_bytes(b"user edit after the op")
    (root / "10_a" / "new.txt").write_bytes(b"user edit of the created file")
    (root / "10_a" / "y.txt").write_bytes(b"user made a new y")
    after_edits = tree_digest(root)
    with pytest.raises(SafetyError, match="--force.*tick 'force'"):
        safety.undo(rec)
    undone = safety.undo(rec, force=True)
    assert tree_digest(root) == before  # the op is undone
    assert undone.status == "undone" and undone.later_edits
    message = safety.undo_message(undone, "`bakery dataset undo R`")
    assert undone.later_edits in message and "bakery dataset undo R" in message
    newest = safety.list_backups(root)[0]
    assert newest.path.name == undone.later_edits and newest.status == "applied"
    safety.undo(newest)  # the undo of the undo: every later edit is back
    assert tree_digest(root) == after_edits


def test_undo_from_folder_path_and_mtime_restored(root):
    p = root / "10_a" / "x.txt"
    os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    rec = safety.apply(Plan("w", [Change(str(p), "write", new_bytes=b"abs path ok")]), root)
    safety.undo(str(rec.path))
    assert p.read_bytes() == b"1girl, solo" and p.stat().st_mtime_ns == 1_000_000_000


def test_keep_last_n_backups(root):
    for i in range(4):
        safety.apply(Plan(f"op{i}", [Change(f"10_a/n{i}.txt", "create", new_bytes=b"x")]), root, keep=2)
    recs = safety.list_backups(root)
    assert [r.op for r in recs] == ["op3", "op2"]


def test_empty_plan_and_manifest_contents(root):
    with pytest.raises(SafetyError, match="nothing to apply"):
        safety.apply(Plan("none"), root)
    rec = safety.apply(Plan("w", [Change("10_a/x.txt", "write", new_bytes=b"a", description="why")]), root)
    m = json.loads((rec.path / "manifest.json").read_text())
    assert m["status"] == "applied" and m["entries"][0]["description"] == "why" and m["entries"][0]["old_sha256"]
    assert safety.summary(Plan("w", [Change("a", "delete")], skipped=[("b", "r")])) == "w: 1 delete, 1 skipped"


def test_change_validates_its_fields():
    with pytest.raises(ValueError):
        Change("a", "write")
    with pytest.raises(ValueError):
        Change("a", "rename")
    with pytest.raises(ValueError):
        Change("a", "explode")  # type: ignore[arg-type]


def test_rewritten_user_files_keep_their_mode_new_ones_get_the_umask_mode(root):
    """A caption the user made private stays private after an edit and after its undo; a new file is 0644 (umask 022)."""
    import stat

    old = os.umask(0o022)
    try:
        caption = root / "10_a" / "x.txt"
        os.chmod(caption, 0o640)
        plan = Plan("modes", [Change("10_a/x.txt", "write", new_bytes=b"edited"),
                              Change("10_a/new.txt", "create", new_bytes=b"new")])
        rec = safety.apply(plan, root)
        assert stat.S_IMODE(caption.stat().st_mode) == 0o640
        assert stat.S_IMODE((root / "10_a" / "new.txt").stat().st_mode) == 0o644
        safety.undo(rec)
        assert caption.read_bytes() == b"1girl, solo" and stat.S_IMODE(caption.stat().st_mode) == 0o640
    finally:
        os.umask(old)
