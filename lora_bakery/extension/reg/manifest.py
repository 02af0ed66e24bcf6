"""``manifest.json``: the parameters of every reg image, so a run can be resumed, reviewed and repeated.

Lives at the root of the reg folder (kohya reads only images and captions inside the ``N_name``
folders, so it is never trained on). One entry per image, keyed by its path relative to the reg
folder: prompt, negative prompt, seed, size, sampler, steps, CFG, model name and hash, the source
image and its original caption. Deleted images move to ``deleted`` so a resume does not make
them again. Written atomically after every batch.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lora_bakery
from lora_bakery.extension.reg.files import write_json

MANIFEST_NAME = "manifest.json"
VERSION = 1

#: Fields of an image entry that decide what the image shows: a resume keeps an image only when
#: these still match the plan.
IDENTITY = ("prompt", "negative_prompt", "width", "height")


@dataclass
class Manifest:
    """The manifest of one reg folder.

    Attributes:
        path (`Path`): ``<output>/manifest.json``.
        images (`dict[str, dict]`): out_rel → entry.
        deleted (`dict[str, dict]`): entries of images the user deleted.
        meta (`dict`): source, settings, model, skipped, timestamps.
        notes (`list[str]`): what happened while loading (a corrupt manifest set aside…).
    """

    path: Path
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.path.parent

    @classmethod
    def load(cls, output: str | Path) -> Manifest:
        """Read ``<output>/manifest.json``; an empty manifest when there is none.

        A manifest that is not valid JSON is renamed to ``manifest.json.bad-<time>`` (kept for the
        user) and a fresh one started; the images themselves carry their parameters (PNG text), so
        a resume still recognises them.
        """
        path = Path(output) / MANIFEST_NAME
        manifest = cls(path)
        if not path.is_file():
            return manifest
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("images", {}), dict):
                raise ValueError("not a manifest object")
        except (ValueError, OSError) as exc:
            aside = path.with_name(f"{MANIFEST_NAME}.bad-{int(time.time())}")
            path.replace(aside)
            manifest.notes.append(f"{path.name} was unreadable ({exc}); kept as {aside.name}, started a new one")
            return manifest
        manifest.images = dict(data.get("images") or {})
        manifest.deleted = dict(data.get("deleted") or {})
        manifest.meta = {k: v for k, v in data.items() if k not in ("images", "deleted")}
        return manifest

    def save(self) -> None:
        """Write the manifest atomically."""
        data = {**self.meta, "version": VERSION, "tool": f"lora-bakery {lora_bakery.__version__}",
                "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "images": dict(sorted(self.images.items())),
                "deleted": dict(sorted(self.deleted.items()))}
        write_json(self.path, data)

    def matches(self, out_rel: str, wanted: dict[str, Any]) -> bool:
        """Whether the recorded image ``out_rel`` shows what ``wanted`` asks for (see :data:`IDENTITY`)."""
        entry = self.images.get(out_rel)
        return entry is not None and all(entry.get(k) == wanted.get(k) for k in IDENTITY)

    def mark_deleted(self, out_rel: str) -> bool:
        """Move an entry to ``deleted``; True when it was there."""
        entry = self.images.pop(out_rel, None)
        if entry is None:
            return False
        self.deleted[out_rel] = {**entry, "deleted": time.strftime("%Y-%m-%dT%H:%M:%S")}
        return True
