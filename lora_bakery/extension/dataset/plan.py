"""What a dataset operation would do: a :class:`Plan` of :class:`Change` items, shown before anything is touched.

Planners return a ``Plan``; ``safety.apply`` checks it against the disk, backs up every file it touches
and makes the changes; ``safety`` re-exports these names, so callers import them from either module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ChangeKind = Literal["write", "create", "rename", "move", "delete"]
KINDS = ("write", "create", "rename", "move", "delete")


@dataclass(frozen=True)
class Change:
    """One change to one path (relative to the training root, or absolute inside it).

    Args:
        path (`str`): the file (or, for rename/move, file or folder) changed.
        kind (`str`): ``write`` (replace an existing file's bytes), ``create`` (a new file), ``rename`` /
            ``move`` (to ``new_path``; never over an existing path), ``delete`` (moved into the backup).
        new_bytes (`bytes`, *optional*): the content for ``write`` and ``create``.
        new_path (`str`, *optional*): the destination for ``rename`` and ``move``.
        description (`str`): what and why, shown in the preview.
    """

    path: str
    kind: ChangeKind
    new_bytes: bytes | None = None
    new_path: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown change kind {self.kind!r}; one of {', '.join(KINDS)}")
        if self.kind in ("write", "create") and self.new_bytes is None:
            raise ValueError(f"{self.kind} {self.path}: new_bytes is required")
        if self.kind in ("rename", "move") and not self.new_path:
            raise ValueError(f"{self.kind} {self.path}: new_path is required")


@dataclass
class Thumbnail:
    """Before/after thumbnails (small PNG bytes) of one change, for the preview."""

    path: str
    before: bytes | None
    after: bytes | None
    label: str = ""


@dataclass
class Plan:
    """What an operation would do. Nothing is touched until :func:`apply`.

    Attributes:
        op: a short operation name used in the backup folder (``convert-png``, ``repeats``…).
        changes: applied in order.
        skipped: ``(path, reason)`` for inputs the operation left alone, shown to the user.
        thumbnails: optional before/after previews.
    """

    op: str
    changes: list[Change] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    thumbnails: list[Thumbnail] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changes)


def preview(plan: Plan) -> list[dict]:
    """Rows for the preview table: kind, path, new path, bytes, description (no file is touched)."""
    rows = [{"kind": c.kind, "path": c.path, "new_path": c.new_path or "",
             "bytes": len(c.new_bytes) if c.new_bytes is not None else None, "description": c.description}
            for c in plan.changes]
    rows += [{"kind": "skip", "path": p, "new_path": "", "bytes": None, "description": why} for p, why in plan.skipped]
    return rows


def summary(plan: Plan) -> str:
    """One line: how many changes of each kind and how many inputs were skipped."""
    counts: dict[str, int] = {}
    for c in plan.changes:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    parts = [f"{n} {k}" for k, n in counts.items()] or ["no changes"]
    if plan.skipped:
        parts.append(f"{len(plan.skipped)} skipped")
    return f"{plan.op}: " + ", ".join(parts)
