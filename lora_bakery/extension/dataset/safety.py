"""The one place that changes user files: plan → preview → apply (with backup) → undo.

Every dataset operation returns a :class:`Plan`. :func:`apply` checks the whole plan first, copies
every file it will touch into ``<root>/.bakery/backups/<timestamp>-<op>/`` with a ``manifest.json``,
then makes the changes one by one with atomic writes (temp file + ``os.replace``). If anything fails
midway it rolls back what it did, so a plan is applied entirely or not at all. :func:`undo` restores
the backed-up bytes exactly, removes created files and renames back — and refuses (unless forced)
when a file changed after the apply, so an undo never destroys later edits. A forced undo is itself
applied as a plan, so the later edits it replaces are backed up first and undoing it brings them back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from lora_bakery.extension.dataset.plan import KINDS, Change, ChangeKind, Plan, Thumbnail, preview, summary
from lora_bakery.trainer.atomic import write_bytes_atomic
from lora_bakery.trainer.data.folders import BAKERY_DIR

__all__ = ["KINDS", "BackupRecord", "Change", "ChangeKind", "Plan", "SafetyError", "Thumbnail", "apply", "undo",
           "list_backups", "load_backup", "preview", "prune_backups", "record_dict", "summary", "undo_message"]
BACKUPS = "backups"
MANIFEST = "manifest.json"
#: Backups kept per training root by default (older ones are pruned after each apply).
KEEP_BACKUPS = 20


class SafetyError(RuntimeError):
    """A plan that cannot be applied or undone as asked; the message says which file and why."""


@dataclass
class BackupRecord:
    """A backup folder and its manifest (what :func:`undo` needs)."""

    path: Path
    op: str
    created: float
    status: str
    entries: list[dict]
    later_edits: str = ""  # a forced undo: the backup holding the edits made after the apply

    @property
    def root(self) -> Path:
        return self.path.parent.parent.parent


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace`` (never half-written),
    flushed to disk first: these are the user's own files."""
    write_bytes_atomic(path, data, fsync=True)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _rel(root: Path, p: str | os.PathLike) -> str:
    """``p`` as a POSIX path relative to ``root``; refuses paths outside it and inside ``.bakery``."""
    path = Path(p)
    full = path if path.is_absolute() else root / path
    full = Path(os.path.normpath(full))
    try:
        rel = full.relative_to(root)
    except ValueError:
        raise SafetyError(f"{p}: outside the training folder {root}") from None
    if not rel.parts or rel.parts[0] == BAKERY_DIR:
        raise SafetyError(f"{p}: not a file of the dataset (the root itself or LoRA Bakery's own .bakery folder)")
    return rel.as_posix()


def _check(plan: Plan, root: Path) -> list[tuple[Change, str, str | None]]:
    """Validate the plan against the disk, simulating each change in order; returns resolved (change, rel, new_rel)."""
    overlay: dict[str, bool] = {}

    def exists(rel: str) -> bool:
        return overlay[rel] if rel in overlay else os.path.lexists(root / rel)

    out = []
    for c in plan.changes:
        rel = _rel(root, c.path)
        new_rel = _rel(root, c.new_path) if c.new_path else None
        if c.kind == "create":
            if rel in overlay and overlay[rel]:
                raise SafetyError(f"{rel}: two changes of this {plan.op} plan create it; nothing was changed (a "
                                  "planning bug: please report it with the preview)")
            if exists(rel):
                raise SafetyError(f"{rel}: already exists; LoRA Bakery never overwrites a file when creating one")
            overlay[rel] = True
        elif c.kind == "write":
            if not exists(rel) or (rel not in overlay and not (root / rel).is_file()):
                raise SafetyError(f"{rel}: cannot rewrite a file that does not exist (or is not a file)")
        elif c.kind == "delete":
            if not exists(rel) or (rel not in overlay and not (root / rel).is_file()):
                raise SafetyError(f"{rel}: cannot delete a file that does not exist (or is not a file)")
            overlay[rel] = False
        else:  # rename / move
            if not exists(rel):
                raise SafetyError(f"{rel}: cannot {c.kind} a path that does not exist")
            if exists(new_rel) and not _same_file_case_only(root, rel, new_rel):
                raise SafetyError(f"{new_rel}: already exists; LoRA Bakery never renames over an existing path")
            overlay[rel], overlay[new_rel] = False, True
        out.append((c, rel, new_rel))
    return out


def _same_file_case_only(root: Path, a: str, b: str) -> bool:
    return a.lower() == b.lower() and a != b and os.path.samefile(root / a, root / b) if os.path.lexists(root / b) else False


def _slug(op: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", op).strip("-") or "op"


def _write_manifest(folder: Path, manifest: dict) -> None:
    atomic_write_bytes(folder / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))


def backups_dir(root: str | os.PathLike) -> Path:
    """``<root>/.bakery/backups``."""
    return Path(root) / BAKERY_DIR / BACKUPS


def apply(plan: Plan, root: str | os.PathLike, *, keep: int = KEEP_BACKUPS) -> BackupRecord:
    """Apply ``plan`` under ``root`` all-or-nothing, after backing up every touched file.

    Args:
        plan (`Plan`): the changes, applied in order.
        root (`str | os.PathLike`): the training folder; every path must lie inside it.
        keep (`int`, *optional*, defaults to 20): backups kept afterwards (older ones are pruned; 0 keeps all).

    Returns:
        `BackupRecord`: pass it (or its ``path``) to :func:`undo`.

    Raises:
        SafetyError: the plan is invalid (nothing was changed), or a change failed (everything done was rolled back).
    """
    root = Path(os.path.abspath(root))
    if not plan.changes:
        raise SafetyError(f"{plan.op}: nothing to apply")
    resolved = _check(plan, root)
    stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
    folder = backups_dir(root) / f"{stamp}-{_slug(plan.op)}"
    files = folder / "files"
    try:
        files.mkdir(parents=True)
    except OSError as exc:
        raise SafetyError(f"{plan.op}: cannot write the backup into {backups_dir(root)} ({exc.strerror or exc}): the "
                          "training folder is read-only for LoRA Bakery, so nothing was changed. Fix its permissions, "
                          "or copy it somewhere writable.") from None
    entries: list[dict] = []
    # 1. back up every file whose bytes will be replaced or removed, and write the manifest first
    for i, (c, rel, new_rel) in enumerate(resolved):
        e: dict = {"kind": c.kind, "path": rel, "new_path": new_rel, "description": c.description}
        if c.kind in ("write", "delete"):
            src = root / rel
            if src.is_file():
                dst = files / f"{i:06d}"
                shutil.copy2(src, dst)
                e["backup"], e["old_sha256"] = dst.name, _sha256(dst)
        if c.kind in ("write", "create"):
            e["new_sha256"] = hashlib.sha256(c.new_bytes or b"").hexdigest()
        entries.append(e)
    manifest = {"op": plan.op, "created": time.time(), "status": "applying", "root": str(root), "entries": entries}
    _write_manifest(folder, manifest)
    # 2. apply in order; on failure undo what was done, newest first
    done: list[dict] = []
    try:
        for (c, rel, new_rel), e in zip(resolved, entries):
            _do(root, c, rel, new_rel)
            done.append(e)
    except Exception as exc:
        problems = _revert(root, folder, list(reversed(done)))
        manifest["status"] = "rolled-back" if not problems else "rollback-incomplete"
        manifest["error"] = str(exc)
        _write_manifest(folder, manifest)
        extra = "" if not problems else " Rollback problems: " + "; ".join(problems)
        raise SafetyError(f"{plan.op}: failed at {e['path']}: {exc}. Every earlier change was rolled back.{extra}") from exc
    manifest["status"] = "applied"
    _write_manifest(folder, manifest)
    if keep:
        prune_backups(root, keep=keep)
    return BackupRecord(folder, plan.op, manifest["created"], "applied", entries)


def _do(root: Path, c: Change, rel: str, new_rel: str | None) -> None:
    target = root / rel
    if c.kind in ("write", "create"):
        if c.kind == "create" and os.path.lexists(target):
            raise FileExistsError(f"{rel} appeared while applying")
        atomic_write_bytes(target, c.new_bytes or b"")
    elif c.kind == "delete":
        target.unlink()
    else:
        dest = root / (new_rel or "")
        if os.path.lexists(dest) and not _same_file_case_only(root, rel, new_rel or ""):
            raise FileExistsError(f"{new_rel} appeared while applying")
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(target, dest)


def _revert(root: Path, folder: Path, entries: Iterable[dict]) -> list[str]:
    """Undo manifest entries (newest first). Returns problems instead of stopping at the first one."""
    problems = []
    for e in entries:
        try:
            kind, target = e["kind"], root / e["path"]
            if kind == "create":
                if target.exists():
                    target.unlink()
            elif kind in ("write", "delete"):
                atomic_write_bytes(target, (folder / "files" / e["backup"]).read_bytes())
                shutil.copystat(folder / "files" / e["backup"], target)
            else:
                dest = root / e["new_path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(dest, target)
        except Exception as exc:  # keep going: restore as much as possible, report the rest
            problems.append(f"{e['path']}: {exc}")
    return problems


def load_backup(backup: BackupRecord | str | os.PathLike) -> BackupRecord:
    """Read a backup folder's manifest."""
    folder = backup.path if isinstance(backup, BackupRecord) else Path(backup)
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SafetyError(f"{folder}: not a LoRA Bakery backup ({exc})") from exc
    return BackupRecord(folder, m.get("op", "?"), float(m.get("created", 0)), m.get("status", "?"), m.get("entries", []),
                        m.get("later_edits", ""))


def undo(backup: BackupRecord | str | os.PathLike, *, force: bool = False) -> BackupRecord:
    """Undo an applied plan: restore backed-up bytes, remove created files, rename back.

    Args:
        backup (`BackupRecord | str | os.PathLike`): from :func:`apply` or :func:`list_backups`.
        force (`bool`, *optional*, defaults to False): undo even files edited after the apply. Their later
            edits are first backed up (the undo runs as a plan of its own, see :func:`_forced_undo`), so
            undoing the undo restores them; ``later_edits`` names that backup. Without ``force`` such an
            undo is refused with the list of the files.

    Returns:
        `BackupRecord`: with status ``undone``.

    Raises:
        SafetyError: not an applied backup, or files changed since (nothing was touched in that case).
    """
    rec = load_backup(backup)
    if rec.status != "applied":
        raise SafetyError(f"{rec.path.name}: status is '{rec.status}', only an applied change can be undone")
    root = rec.root
    changed = []
    overlay: dict[str, bool] = {}  # existence after undoing the later entries (walked newest first)
    for i in range(len(rec.entries) - 1, -1, -1):
        e, later = rec.entries[i], rec.entries[i + 1:]

        def exists(rel: str, later=later) -> bool:
            return overlay[rel] if rel in overlay else os.path.lexists(root / _final(rel, later))

        kind, rel = e["kind"], e["path"]
        if kind in ("write", "create"):
            disk = root / _final(rel, later)
            if rel in overlay or not disk.is_file() or _sha256(disk) != e.get("new_sha256"):
                changed.append(f"{rel} (changed or removed since)")
            if kind == "create":
                overlay[rel] = False
        elif kind == "delete":
            if exists(rel):
                changed.append(f"{rel} (a new file is there now)")
            overlay[rel] = True
        else:
            if not exists(e["new_path"]):
                changed.append(f"{e['new_path']} (missing)")
            elif exists(rel) and not _same_file_case_only(root, rel, e["new_path"]):
                changed.append(f"{rel} (a new file is there now)")
            overlay[e["new_path"]], overlay[rel] = False, True
    if changed and not force:
        raise SafetyError("undo refused, these changed after the apply: " + "; ".join(changed)
                          + ". Nothing was touched. To undo anyway (your later edits are backed up first, and undoing "
                          "the undo brings them back): bakery dataset undo ROOT --force, or tick 'force' in "
                          "Dataset → Backups.")
    if changed:
        return _forced_undo(rec)
    problems = _revert(root, rec.path, reversed(rec.entries))
    m = json.loads((rec.path / MANIFEST).read_text(encoding="utf-8"))
    m["status"] = "undone" if not problems else "undo-incomplete"
    m["undone"] = time.time()
    _write_manifest(rec.path, m)
    if problems:
        raise SafetyError("undo incomplete: " + "; ".join(problems))
    return load_backup(rec.path)


def _forced_undo(rec: BackupRecord) -> BackupRecord:
    """Undo ``rec`` over later edits: as a plan of its own, applied (backed up, all or nothing) like any other."""
    root = rec.root
    plan = Plan(f"undo-{rec.op}")
    state: dict[str, bool] = {}

    def exists(rel: str) -> bool:
        return state[rel] if rel in state else os.path.lexists(root / rel)

    for e in reversed(rec.entries):
        kind, rel = e["kind"], e["path"]
        if kind == "create":
            if exists(rel):
                plan.changes.append(Change(rel, "delete", description=f"undo {rec.op}: remove the file it created"))
                state[rel] = False
        elif kind in ("write", "delete") and e.get("backup"):
            data = (rec.path / "files" / e["backup"]).read_bytes()
            plan.changes.append(Change(rel, "write" if exists(rel) else "create", data,
                                       description=f"undo {rec.op}: restore the bytes from before it"))
            state[rel] = True
        elif kind in ("rename", "move"):
            if not exists(e["new_path"]) or exists(rel):
                raise SafetyError(f"undo refused even with force: cannot move {e['new_path']} back to {rel} "
                                  "(one is missing or the other is taken). Nothing was touched.")
            plan.changes.append(Change(e["new_path"], kind, new_path=rel, description=f"undo {rec.op}: move back"))
            state[e["new_path"]], state[rel] = False, True
    later = apply(plan, root, keep=0)
    m = json.loads((rec.path / MANIFEST).read_text(encoding="utf-8"))
    m.update(status="undone", undone=time.time(), later_edits=later.path.name)
    _write_manifest(rec.path, m)
    return load_backup(rec.path)


def undo_message(rec: BackupRecord, again: str) -> str:
    """What an undo did, in one line (names the backup of the later edits after a forced undo).

    Args:
        rec (`BackupRecord`): what :func:`undo` returned.
        again (`str`): how the user undoes the newest change where they are (a command or a button).
    """
    text = f"Undone: {rec.path.name} ({rec.op}, {len(rec.entries)} change(s) restored)."
    if rec.later_edits:
        text += (f" The edits made after it were backed up first in {rec.later_edits}; {again} brings them back "
                 "(it undoes this undo).")
    return text


def _final(rel: str, later: list[dict]) -> str:
    """Where ``rel`` ended up after the later renames/moves of the same plan (folder renames move their files)."""
    for e in later:
        if e["kind"] in ("rename", "move"):
            if rel == e["path"]:
                rel = e["new_path"]
            elif rel.startswith(e["path"] + "/"):
                rel = e["new_path"] + rel[len(e["path"]):]
    return rel


def list_backups(root: str | os.PathLike) -> list[BackupRecord]:
    """Backups under ``root``, newest first (folders without a readable manifest are ignored)."""
    base = backups_dir(root)
    if not base.is_dir():
        return []
    out = []
    for d in base.iterdir():
        if d.is_dir():
            try:
                out.append(load_backup(d))
            except SafetyError:
                continue
    return sorted(out, key=lambda r: (r.created, r.path.name), reverse=True)


def prune_backups(root: str | os.PathLike, keep: int = KEEP_BACKUPS) -> list[Path]:
    """Delete all but the newest ``keep`` backups; returns the removed folders."""
    removed = []
    for rec in list_backups(root)[keep:]:
        shutil.rmtree(rec.path, ignore_errors=True)
        removed.append(rec.path)
    return removed


def record_dict(rec: BackupRecord) -> dict:
    """A JSON-ready view of a backup record (for the API)."""
    d = asdict(rec)
    d["path"] = str(rec.path)
    return d
