"""Which folders the HTTP API may read and write: resolution, the allow-list, and file-name checks.

The API takes paths from whoever reaches the port, so every path in a request is resolved the way
the operation will use it (``~``, ``..``, symlinks, relative to the server's working folder or to
the folder it belongs to) and must land inside an allowed folder. The allowed folders are the
host's data folders, the folders a setting or ``bakery app --allow`` lists, and the folders the
person at the UI opened in a tab this session (:func:`remember`: a process-wide list, so it
survives A1111's "Reload UI"). Names that become file names (a backup, a caption extension) must
stay a single path component. Stdlib only: the UI imports :func:`remember` without FastAPI.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

_SESSION: list[Path] = []
_LOCK = threading.Lock()


class PathNotAllowed(PermissionError):
    """A request path resolves outside every allowed folder (answered 403)."""


class BadName(ValueError):
    """A name that becomes a file name would leave its folder (answered 400)."""


def resolve(value: str, base: str | os.PathLike | None = None) -> list[Path]:
    """Every absolute, symlink-free path ``value`` may stand for.

    A leading ``~`` is checked both expanded and literally (some operations expand it, some
    do not); relative values resolve against ``base`` (else the working folder).

    Args:
        value (`str`): the path as the caller wrote it.
        base (`str | os.PathLike`, *optional*): the folder a relative ``value`` is inside of.

    Returns:
        `list[Path]`: one or two resolved paths (``..`` and symlinks followed).

    Raises:
        BadName: an empty value or one holding a NUL byte.
    """
    text = str(value)
    if not text.strip() or "\x00" in text:
        raise BadName("empty path" if "\x00" not in text else "a path may not contain a NUL byte")
    forms = [text] + ([os.path.expanduser(text)] if text.startswith("~") else [])
    out = []
    for form in forms:
        path = Path(form)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        out.append(Path(os.path.realpath(os.path.abspath(path))))
    return out


def check_name(value: str, field: str) -> str:
    """``value`` if it is one plain path component (it becomes a file or folder name).

    Raises:
        BadName: empty, ``.``/``..``, a path separator, a drive, an absolute path or a NUL byte.
    """
    text = str(value)
    bad = (not text.strip() or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text
           or os.path.isabs(text) or (len(text) > 1 and text[1] == ":" and text[0].isalpha()))
    if bad:
        raise BadName(f"{field}: {value!r} must be a plain name (no folders, '..', drive or absolute path)")
    return text


def remember(*folders: str | os.PathLike | None) -> None:
    """Allow ``folders`` for the rest of this process: the UI calls this when a tab opens a folder.

    Empty values and the filesystem root (which would allow everything) are ignored.
    """
    for folder in folders:
        if folder is None or not str(folder).strip():
            continue
        try:
            (path,) = resolve(os.path.expanduser(str(folder).strip()))
        except BadName:
            continue
        if path == Path(path.anchor):
            continue
        with _LOCK:
            if path not in _SESSION:
                _SESSION.append(path)


def session_folders() -> list[Path]:
    """The folders opened in the tabs so far (resolved)."""
    with _LOCK:
        return list(_SESSION)


def forget_session() -> None:
    """Empty the session list (tests)."""
    with _LOCK:
        _SESSION.clear()


def split_folders(text: str | Iterable[str] | None) -> list[str]:
    """A setting's folders: one per line or comma-separated (a list passes through, stripped)."""
    if not text:
        return []
    items = [text] if isinstance(text, str) else list(text)
    return [part.strip() for item in items for line in str(item).splitlines() for part in line.split(",")
            if part.strip()]


class AllowList:
    """The folders an API request may touch.

    Args:
        fixed (`Iterable`, defaults to ``()``): always allowed (the host's data folders, ``--allow``).
        configured (`Callable[[], Iterable]`, *optional*): read at every check, so a changed
            setting applies without a restart.
        session (`Callable[[], Iterable]`, defaults to :func:`session_folders`): folders opened in
            the UI; tests pass their own.
        hint (`str`): how the user allows another folder; ends every refusal.
    """

    def __init__(self, fixed: Iterable[str | os.PathLike] = (),
                 configured: Callable[[], Iterable[str | os.PathLike]] | None = None,
                 session: Callable[[], Iterable[str | os.PathLike]] = session_folders,
                 hint: str = "open it in a LoRA Bakery tab first") -> None:
        self.fixed = [str(f) for f in fixed if str(f).strip()]
        self.configured = configured
        self.session = session
        self.hint = hint

    def folders(self) -> list[Path]:
        """Every allowed folder now, resolved, without repeats."""
        raw = list(self.fixed) + list(self.configured() if self.configured else []) + list(self.session())
        out: list[Path] = []
        for item in raw:
            try:
                paths = resolve(str(item))
            except BadName:
                continue
            out += [p for p in paths if p not in out]
        return out

    def allows(self, path: Path) -> bool:
        """``path`` (resolved) is an allowed folder or inside one."""
        key = os.path.normcase(str(path))
        for folder in self.folders():
            root = os.path.normcase(str(folder))
            if key == root or key.startswith(root.rstrip(os.sep) + os.sep):
                return True
        return False

    def check(self, value: str, field: str, base: str | os.PathLike | None = None) -> Path:
        """The resolved path of ``value`` when it is allowed.

        Raises:
            PathNotAllowed: it resolves outside every allowed folder (the message names the field,
                where it leads and how to allow it).
            BadName: empty or NUL.
        """
        resolved = resolve(value, base)
        for path in resolved:
            if not self.allows(path):
                raise PathNotAllowed(f"{field}: {value!r} resolves to {str(path)!r}, outside the folders the "
                                     f"LoRA Bakery API may use; {self.hint}")
        return resolved[-1]
