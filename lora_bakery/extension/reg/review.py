"""Review a reg folder: list its images, re-roll the bad ones with new seeds, delete others.

"Review the reg images for aberrations and manually rerun the ones that didn't pass muster"
(reference/lora-baking-guide.txt): a re-roll keeps the image's prompt, size and settings from the
manifest, takes a new seed, replaces the file atomically and records the old seed; a delete
removes the image and its caption and keeps the entry under ``deleted`` so a resume does not
make it again (a re-roll brings it back).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_bakery.extension.host.base import GenerationRequest, Host, NullProgress, Progress
from lora_bakery.extension.reg import files
from lora_bakery.extension.reg.generate import BatchProgress, model_info, save_generated
from lora_bakery.extension.reg.manifest import Manifest


@dataclass
class ReviewResult:
    """What a re-roll or delete did: changed paths, refused ones with reasons, interrupt flag."""

    changed: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    seeds: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False

    def summary(self, verb: str) -> str:
        text = f"{verb} {len(self.changed)} image(s)"
        if self.refused:
            text += "; not " + verb.lower() + ": " + "; ".join(f"{p} ({r})" for p, r in self.refused)
        return text + (" (interrupted)" if self.interrupted else "")

    def to_dict(self) -> dict[str, Any]:
        return {"changed": self.changed, "refused": [{"path": p, "reason": r} for p, r in self.refused],
                "seeds": self.seeds, "interrupted": self.interrupted}


@dataclass(frozen=True)
class ReviewRow:
    """One image of a reg folder for the gallery / table."""

    path: str
    source: str
    caption: str
    prompt: str
    seed: int
    width: int
    height: int
    rerolls: int
    exists: bool


def list_images(output: str | Path) -> list[ReviewRow]:
    """The images recorded in a reg folder's manifest, in path order.

    Args:
        output (`str | Path`): the reg folder.

    Returns:
        `list[ReviewRow]`: one row per recorded image (``exists`` False when the file is gone).
    """
    manifest = Manifest.load(_folder(output))
    return [ReviewRow(rel, e.get("source", ""), e.get("caption", ""), e.get("prompt", ""), int(e.get("seed", -1)),
                      int(e.get("width", 0)), int(e.get("height", 0)), int(e.get("rerolls", 0)),
                      (manifest.root / rel).is_file()) for rel, e in sorted(manifest.images.items())]


def _folder(output: str | Path) -> Path:
    path = Path(output).expanduser().resolve()
    if not path.is_dir():
        raise ValueError(f"reg folder {path} does not exist")
    return path


def _normalise(manifest: Manifest, paths: list[str]) -> list[str]:
    """Accept paths relative to the reg folder or absolute ones inside it; POSIX, de-duplicated."""
    out: list[str] = []
    for p in paths:
        p = str(p).strip()
        if not p:
            continue
        path = Path(p)
        if path.is_absolute():
            try:
                p = path.resolve().relative_to(manifest.root.resolve()).as_posix()
            except ValueError:
                p = path.as_posix()
        if p not in out:
            out.append(p)
    return out


def reroll(host: Host, output: str | Path, paths: list[str], progress: Progress | None = None,
           seeds: list[int] | None = None) -> ReviewResult:
    """Generate selected reg images again with new seeds (same prompt, size, steps, CFG, sampler).

    Args:
        host (`Host`): the host (its current model makes the new images).
        output (`str | Path`): the reg folder.
        paths (`list[str]`): images relative to the reg folder (as in the manifest), or absolute.
        progress (`Progress`, *optional*): one step per image; interrupt keeps what is finished.
        seeds (`list[int]`, *optional*): the new seeds, one per path; random when not given.

    Returns:
        `ReviewResult`: re-rolled paths with their new seeds; unknown paths refused with a reason.
    """
    manifest = Manifest.load(_folder(output))
    result = ReviewResult()
    wanted = _normalise(manifest, paths)
    if seeds is not None and len(seeds) != len(wanted):
        raise ValueError(f"seeds: give one per image ({len(wanted)}), got {len(seeds)}")
    rng = random.Random()
    todo: list[tuple[str, dict[str, Any], int]] = []
    for i, rel in enumerate(wanted):
        entry = manifest.images.get(rel) or manifest.deleted.get(rel)
        if entry is None:
            result.refused.append((rel, "not in this reg folder's manifest"))
            continue
        old = int(entry.get("seed", -1))
        seed = seeds[i] if seeds is not None else rng.randrange(2**31)
        while seeds is None and seed == old:
            seed = rng.randrange(2**31)
        todo.append((rel, entry, seed))
    if not todo:
        return result
    progress = progress or NullProgress()
    with host.exclusive():
        model = model_info(host)
        progress.begin(len(todo), "Re-rolling reg images")
        try:
            for rel, entry, seed in todo:
                if progress.interrupted:
                    result.interrupted = True
                    break
                watcher = BatchProgress(progress)
                req = GenerationRequest(prompt=entry.get("prompt", ""), negative_prompt=entry.get("negative_prompt", ""),
                                        seed=seed, width=int(entry["width"]), height=int(entry["height"]),
                                        steps=int(entry.get("steps", 20)), cfg_scale=float(entry.get("cfg_scale", 7.0)),
                                        sampler=entry.get("sampler") or None)
                images = host.generate([req], watcher)
                if not images or watcher.cut == 0:
                    result.interrupted = True
                    break
                history = [*entry.get("previous_seeds", []), int(entry.get("seed", -1))]
                base = {k: entry[k] for k in ("source", "original_caption", "caption", "prompt", "negative_prompt")
                        if k in entry}
                save_generated(manifest, rel, base, images[0], model,
                               {"rerolls": int(entry.get("rerolls", 0)) + 1, "previous_seeds": history,
                                "rerolled": time.strftime("%Y-%m-%dT%H:%M:%S")})
                manifest.save()
                result.changed.append(rel)
                result.seeds[rel] = int(images[0].seed)
                progress.step(1, f"Re-rolled {len(result.changed)}/{len(todo)}")
        finally:
            progress.end()
    return result


def delete(output: str | Path, paths: list[str]) -> ReviewResult:
    """Delete selected reg images and their captions; a resume will not make them again.

    Args:
        output (`str | Path`): the reg folder.
        paths (`list[str]`): images relative to the reg folder, or absolute.

    Returns:
        `ReviewResult`: deleted paths; unknown ones refused with a reason.
    """
    manifest = Manifest.load(_folder(output))
    result = ReviewResult()
    for rel in _normalise(manifest, paths):
        if rel not in manifest.images:
            result.refused.append((rel, "not in this reg folder's manifest"))
            continue
        path = manifest.root / rel
        files.remove_file(path)
        files.remove_file(path.with_suffix(".txt"))
        manifest.mark_deleted(rel)
        result.changed.append(rel)
    if result.changed:
        manifest.save()
    return result
