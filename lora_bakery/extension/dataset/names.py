"""Target names for a plan: what is on disk plus what the plan already creates, moves or deletes.

Planners that invent file names (frames of a converted GIF, a PNG beside a converted image, a
moved duplicate, an image sorted into a bucket folder) ask :class:`PlannedPaths` first, so two
inputs of one plan never aim at the same name (``anim.gif`` and ``anim.webp`` both want
``anim_f000.png``) and one collision never makes ``safety.apply`` refuse the whole plan: the planner
picks another name (:meth:`PlannedPaths.first_free`) or skips that one input with a message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

#: Numbered alternatives tried before a planner gives up on a name.
MAX_TRIES = 99


class PlannedPaths:
    """Which paths under a training root exist once the changes planned so far are made.

    Args:
        root (`str | os.PathLike`): the training folder; paths are POSIX paths relative to it.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(os.path.abspath(root))
        self._state: dict[str, bool] = {}
        self.owner: dict[str, str] = {}

    def exists(self, rel: str) -> bool:
        """True when ``rel`` is on disk and not planned away, or planned to appear."""
        key = rel.lower()  # a case-insensitive file system would collide too: be safe on every system
        if key in self._state:
            return self._state[key]
        return os.path.lexists(self.root / rel)

    def add(self, rel: str, by: str = "") -> None:
        """Record that the plan creates (or moves something onto) ``rel``; ``by`` names the input, for messages."""
        self._state[rel.lower()] = True
        self.owner[rel.lower()] = by

    def remove(self, rel: str) -> None:
        """Record that the plan deletes (or moves away) ``rel``."""
        self._state[rel.lower()] = False

    def who(self, rel: str) -> str:
        """The input that claimed ``rel`` in this plan ("" when it is a file on disk)."""
        return self.owner.get(rel.lower(), "")

    def first_free(self, groups: Iterable[list[str]]) -> list[str] | None:
        """The first group of names none of which exists (see :meth:`exists`), or ``None``."""
        for names in groups:
            if not any(self.exists(n) for n in names):
                return names
        return None


def stem_variants(stem: str, tag: str) -> Iterator[str]:
    """``stem``, then ``stem_<tag>``, then ``stem_<tag>_2`` … (the tag says where the file came from: ``anim_webp``)."""
    yield stem
    yield f"{stem}_{tag}"
    for i in range(2, MAX_TRIES + 1):
        yield f"{stem}_{tag}_{i}"


def name_groups(stem: str, tag: str, names: Callable[[str], list[str]]) -> Iterator[list[str]]:
    """``names(variant)`` for every :func:`stem_variants` of ``stem`` (for :meth:`PlannedPaths.first_free`)."""
    return (names(v) for v in stem_variants(stem, tag))
