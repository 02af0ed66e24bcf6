"""Caption-file facts for the scan: exists, size, encoding, BOM, lines, tag count — and their problems.

kohya reads captions as UTF-8 and uses only the first line (``DreamBoothDataset``; wildcards aside),
so a cp1252 file fails to load, a BOM ends up inside the first tag, and extra lines are ignored.
A caption over ~1 KB, or with very many tags, means "the tagger went insane" (recipes.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lora_bakery.trainer.data.captions import caption_lines, split_trained_line

#: Captions larger than this are not read whole for the facts (they are flagged anyway).
READ_LIMIT = 1 << 20
BOM = b"\xef\xbb\xbf"


@dataclass
class Problem:
    """One finding. ``level``: ``error`` (kohya cannot use the item), ``warning`` or ``info``."""

    code: str
    message: str
    level: str = "warning"


@dataclass
class CaptionInfo:
    """Facts about one caption file (``exists=False`` when there is none)."""

    exists: bool
    size: int = 0
    tags: int = 0
    lines: int = 0
    encoding: str = "utf-8"
    bom: bool = False
    problems: list[Problem] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.exists and self.tags == 0


def guess_decode(data: bytes) -> tuple[str, str]:
    """Decode caption bytes: UTF-8 (with or without BOM), else cp1252, else latin-1 (never fails).

    Returns:
        `tuple[str, str]`: (text, encoding name).
    """
    if data.startswith(BOM):
        try:
            return data[len(BOM):].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def read_facts(path: str | os.PathLike, size: int) -> dict:
    """Facts of one caption file (a JSON-ready dict; errors become facts)."""
    try:
        with open(path, "rb") as f:
            data = f.read(READ_LIMIT)
    except OSError as exc:
        return {"size": size, "error": str(exc)}
    text, enc = guess_decode(data)
    first, rest = split_trained_line(text)
    tags = sum(1 for t in first.split(",") if t.strip())
    lines = 1 + sum(1 for ln in caption_lines(rest.lstrip("\r\n")) if ln.strip())  # line 1, then non-blank later lines
    return {"size": size, "tags": tags, "lines": lines, "encoding": enc, "bom": data.startswith(BOM)}


def caption_info(facts: dict) -> CaptionInfo:
    """A :class:`CaptionInfo` from :func:`read_facts` output."""
    info = CaptionInfo(True, facts.get("size", 0), facts.get("tags", 0), facts.get("lines", 0),
                       facts.get("encoding", "utf-8"), bool(facts.get("bom")))
    if "error" in facts:
        info.encoding = "unreadable"
    return info


def caption_problems(info: CaptionInfo, max_bytes: int = 1024, max_tags: int = 80) -> list[Problem]:
    """Problems of one caption (missing, empty, encoding, BOM, extra lines, too big / too many tags)."""
    if not info.exists:
        return [Problem("caption-missing", "no caption file: kohya trains it with the folder's class token only.")]
    out = []
    if info.encoding == "unreadable":
        return [Problem("caption-unreadable", "caption file cannot be read.", "error")]
    if info.encoding not in ("utf-8", "utf-8-sig"):
        out.append(Problem("caption-encoding", f"caption is not UTF-8 (looks like {info.encoding}): kohya fails to read "
                                               "it; rewrite it as UTF-8 (caption operation 'rewrite-utf8').", "error"))
    if info.bom:
        out.append(Problem("caption-bom", "caption starts with a UTF-8 BOM that kohya keeps inside the first tag; "
                                          "rewrite it without ('rewrite-utf8')."))
    if info.tags == 0:
        out.append(Problem("caption-empty", "caption is empty."))
    if info.lines > 1 and info.tags == 0:
        out.append(Problem("caption-lines", f"line 1 is empty but {info.lines - 1} later line(s) hold text: kohya "
                                            "trains only line 1, so none of it is trained; move it to line 1."))
    elif info.lines > 1:
        out.append(Problem("caption-lines", f"caption has {info.lines} lines: kohya trains only the first (the caption "
                                            "tools edit line 1 and keep the others as they are).", "info"))
    if info.size > max_bytes:
        out.append(Problem("caption-huge", f"caption is {info.size:,} bytes (over {max_bytes:,}): the tagger probably "
                                           "went insane on a blurry image; check it."))
    elif info.tags > max_tags:
        out.append(Problem("caption-many-tags", f"caption has {info.tags} tags (over {max_tags}): the tagger probably "
                                                "went insane; check it."))
    return out
