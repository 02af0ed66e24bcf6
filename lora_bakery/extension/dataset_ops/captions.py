"""The captions of one training folder: read them once, edit them as text, write them back as a ``Plan``.

Keys are image paths relative to the training root (``10_chara/img.png``), so the caption editor's
per-folder statistics (``tags.stats.folder_of``) see concept folders. Caption files are read as
bytes and decoded with the scan's rules (``captionfacts.guess_decode``); a file that is not UTF-8 is
shown but left out of batch edits until the user rewrites it as UTF-8 (guessing its encoding wrong
and re-encoding it would damage it silently).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lora_bakery.extension.dataset.captionfacts import BOM, guess_decode
from lora_bakery.extension.dataset.safety import Change, Plan
from lora_bakery.extension.dataset.scan import ScanResult
from lora_bakery.trainer.data.captions import split_trained_line
from lora_bakery.trainer.data.folders import CAPTION_EXTENSION

#: Captions larger than this are not loaded into the editor (they are flagged by the scan).
MAX_CAPTION_READ = 1 << 20
UTF8 = ("utf-8", "utf-8-sig")


@dataclass
class CaptionSet:
    """Every image's caption in one training folder.

    Attributes:
        root (`Path`): the training folder.
        texts (`dict[str, str]`): image key → caption text (``""`` when there is no file).
        files (`dict[str, str]`): image key → caption file, relative to ``root``.
        missing (`set[str]`): images without a caption file.
        encodings (`dict[str, str]`): image key → encoding, only for captions that are not plain UTF-8
            (``utf-8-sig``: has a BOM; ``cp1252``/``latin-1``: not UTF-8).
        shared (`dict[str, str]`): image key → the image that owns the caption file both would use
            (``a.png`` and ``a.jpg`` share ``a.txt``); such images are left out of edits.
        unreadable (`dict[str, str]`): image key → why its caption file could not be read.
    """

    root: Path
    texts: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    encodings: dict[str, str] = field(default_factory=dict)
    shared: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)

    def trained_lines(self) -> dict[str, str]:
        """Image key → line 1 of its caption: what the trainer reads, and what tag edits and filters see."""
        return {k: split_trained_line(t)[0] for k, t in self.texts.items()}

    def editable(self, key: str) -> str | None:
        """Why ``key``'s caption must not be batch-edited, or ``None`` when it may be."""
        if key in self.shared:
            return f"shares its caption file with {self.shared[key]}"
        if key in self.unreadable:
            return self.unreadable[key]
        enc = self.encodings.get(key)
        if enc is not None and enc not in UTF8:
            return f"caption is not UTF-8 (looks like {enc}); run the caption operation 'rewrite-utf8' first"
        return None


def caption_file(image_key: str, extension: str = CAPTION_EXTENSION) -> str:
    """``10_a/img.png`` → ``10_a/img.txt`` (same folder, same stem)."""
    parent, _, name = image_key.rpartition("/")
    stem = os.path.splitext(name)[0]
    return f"{parent}/{stem}{extension}" if parent else f"{stem}{extension}"


def load_captions(scan_result: ScanResult, extension: str = CAPTION_EXTENSION,
                  keys: Iterable[str] | None = None) -> CaptionSet:
    """Read the caption of every scanned image (or of ``keys`` only).

    Args:
        scan_result (`ScanResult`): from ``dataset.scan.scan``.
        extension (`str`, *optional*, defaults to ``.txt``): caption extension.
        keys (`Iterable[str]`, *optional*): restrict to these image keys.

    Returns:
        `CaptionSet`: texts in scan order.
    """
    root = Path(scan_result.root)
    wanted = set(keys) if keys is not None else None
    out = CaptionSet(root)
    owner: dict[str, str] = {}
    for _folder, im in scan_result.images():
        key = im.path
        if wanted is not None and key not in wanted:
            continue
        rel = caption_file(key, extension)
        if rel in owner:
            out.shared[key] = owner[rel]
        owner.setdefault(rel, key)
        out.files[key] = rel
        path = root / rel
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_CAPTION_READ + 1)
        except FileNotFoundError:
            out.texts[key] = ""
            out.missing.add(key)
            continue
        except OSError as exc:
            out.texts[key] = ""
            out.unreadable[key] = f"cannot read caption: {exc.strerror or exc}"
            continue
        if len(data) > MAX_CAPTION_READ:
            out.texts[key] = ""
            out.unreadable[key] = "caption over 1 MB: not a caption, check the file"
            continue
        text, enc = guess_decode(data)
        if enc != "utf-8" or data.startswith(BOM):
            out.encodings[key] = enc
        out.texts[key] = text
    return out


def plan_caption_texts(captions: CaptionSet, new_texts: Mapping[str, str], op: str,
                       description: str = "") -> Plan:
    """A plan writing ``new_texts`` (image key → caption text) into the caption files.

    Captions whose file is missing are created; captions that cannot be batch-edited
    (:meth:`CaptionSet.editable`) are listed in ``plan.skipped`` instead.

    Args:
        captions (`CaptionSet`): the loaded captions (for file names and current state).
        new_texts (`Mapping[str, str]`): the edited texts.
        op (`str`): the operation name (backup folder name).
        description (`str`, *optional*): shown per change.

    Returns:
        `Plan`: one ``write``/``create`` per caption whose bytes change.
    """
    plan = Plan(op)
    for key, text in new_texts.items():
        why = captions.editable(key)
        rel = captions.files.get(key) or caption_file(key)
        if why:
            plan.skipped.append((rel, why))
            continue
        data = text.encode("utf-8")
        if key in captions.missing:
            if text.strip():
                plan.changes.append(Change(rel, "create", data, description=description or "new caption"))
            continue
        old = captions.texts.get(key, "")
        if key not in captions.encodings and data == old.encode("utf-8"):
            continue
        plan.changes.append(Change(rel, "write", data, description=description or "caption edited"))
    return plan


def plan_rewrite_utf8(captions: CaptionSet, keys: Iterable[str] | None = None) -> Plan:
    """Rewrite captions that are not plain UTF-8 (cp1252, latin-1, or with a BOM) as UTF-8.

    The text is what the scan decoded (shown in the preview so the user can check the guess);
    the original bytes go into the backup, so undo restores them exactly.

    Args:
        captions (`CaptionSet`): the loaded captions.
        keys (`Iterable[str]`, *optional*): only these images (default: all).

    Returns:
        `Plan`: one ``write`` per caption to re-encode.
    """
    plan = Plan("rewrite-utf8")
    for key in keys if keys is not None else list(captions.texts):
        enc = captions.encodings.get(key)
        if enc is None or key in captions.shared or key in captions.unreadable:
            continue
        text = captions.texts[key]
        what = "removed the UTF-8 BOM" if enc == "utf-8-sig" else f"decoded as {enc}, written as UTF-8"
        plan.changes.append(Change(captions.files[key], "write", text.encode("utf-8"),
                                   description=f"{what}: {text[:60]!r}"))
    return plan
