"""Duplicate finder: exact (file hash) and near (perceptual hash) groups, a suggested keeper, a move plan.

Hashes follow imagehash 4.3 (reference/dataset-tools.md §5): ``phash`` = DCT of a 32×32 grayscale
(Lanczos) image, low 8×8 block thresholded at its median; ``dhash`` = 9×8 grayscale, each pixel
brighter than its left neighbour. Hamming distance ≤ 6 (phash) counts as a duplicate, 7–10 as
"similar, review". Uniform borders are trimmed before hashing (a white-padded copy otherwise moves
10–20 bits), and a mirrored copy can count too (``flips``). The keeper is the largest image, then the
sharpest (variance of the Laplacian). Others move to ``<root>/_duplicates/<same path>`` with captions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from lora_bakery.extension.dataset.imageprep import open_image, trim_box
from lora_bakery.extension.dataset.names import PlannedPaths, name_groups
from lora_bakery.extension.dataset.safety import Change, Plan
from lora_bakery.trainer.data.folders import CAPTION_EXTENSION, DUPLICATES_DIR

DUPLICATE_DISTANCE = 6
SIMILAR_DISTANCE = 10
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT32 = _dct_matrix(32)


def _bits_to_int(bits: np.ndarray) -> int:
    v = 0
    for b in bits.ravel():
        v = (v << 1) | int(b)
    return v


def phash(gray: Image.Image) -> int:
    """64-bit perceptual hash of a grayscale image (imagehash ``phash``: 32×32 DCT, 8×8 low block > median)."""
    a = np.asarray(gray.convert("L").resize((32, 32), Image.LANCZOS), dtype=np.float64)
    d = _DCT32 @ a @ _DCT32.T  # scipy dct(dct(a, axis=0), axis=1) up to a constant factor
    low = d[:8, :8]
    return _bits_to_int(low > np.median(low))


def dhash(gray: Image.Image) -> int:
    """64-bit difference hash (imagehash ``dhash``: 9×8 grayscale, right pixel brighter than left)."""
    a = np.asarray(gray.convert("L").resize((9, 8), Image.LANCZOS), dtype=np.int16)
    return _bits_to_int(a[:, 1:] > a[:, :-1])


def hamming(a: int, b: int) -> int:
    """Number of differing bits."""
    return bin(a ^ b).count("1")


def sharpness(gray: Image.Image, max_side: int = 1024) -> float:
    """Variance of the 4-neighbour Laplacian (higher = sharper), on at most ``max_side`` pixels a side."""
    g = gray.convert("L")
    if max(g.size) > max_side:
        g = g.copy()
        g.thumbnail((max_side, max_side))
    a = np.asarray(g, dtype=np.float32)
    if a.shape[0] < 3 or a.shape[1] < 3:
        return 0.0
    lap = a[1:-1, :-2] + a[1:-1, 2:] + a[:-2, 1:-1] + a[2:, 1:-1] - 4 * a[1:-1, 1:-1]
    return float(lap.var())


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Member:
    """One image's fingerprint."""

    path: str
    width: int
    height: int
    sharpness: float
    sha256: str
    phash: int
    phash_flip: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass
class Group:
    """Images that look the same. ``kind``: ``exact`` (same bytes), ``duplicate`` (≤ threshold) or ``similar`` (review)."""

    kind: str
    members: list[Member]
    keeper: str
    distance: int = 0

    @property
    def others(self) -> list[str]:
        return [m.path for m in self.members if m.path != self.keeper]


@dataclass
class DuplicateReport:
    groups: list[Group] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def fingerprint(root: Path, rel: str, *, trim: bool = True) -> Member:
    """Hashes, size and sharpness of one image (decoded once)."""
    full = root / rel
    img = open_image(full)
    gray = img.convert("L")
    if trim:
        small = img.copy()
        small.thumbnail((256, 256))
        box = trim_box(small, 10.0)
        if box is not None and box != (0, 0, *small.size):
            sx, sy = img.width / small.width, img.height / small.height
            gray = gray.crop((int(box[0] * sx), int(box[1] * sy), int(round(box[2] * sx)), int(round(box[3] * sy))))
    return Member(rel, img.width, img.height, sharpness(img), file_sha256(full), phash(gray),
                  phash(gray.transpose(Image.FLIP_LEFT_RIGHT)))


def _pairwise(hashes: np.ndarray, others: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Hamming distances between two uint64 hash arrays, in row chunks (n×m uint8)."""
    out = np.empty((len(hashes), len(others)), dtype=np.uint8)
    ob = others.view(np.uint8).reshape(len(others), 8)
    for s in range(0, len(hashes), chunk):
        hb = hashes[s:s + chunk].view(np.uint8).reshape(-1, 1, 8)
        out[s:s + chunk] = _POP8[hb ^ ob[None]].sum(axis=2, dtype=np.uint8)
    return out


def _keeper(members: list[Member]) -> str:
    return max(members, key=lambda m: (m.pixels, m.sharpness, -len(m.path))).path


def find_duplicates(root: str | os.PathLike, paths: Iterable[str], *, threshold: int = DUPLICATE_DISTANCE,
                    similar: int = SIMILAR_DISTANCE, flips: bool = False, trim: bool = True,
                    progress=None) -> DuplicateReport:
    """Group exact and near duplicates.

    Args:
        root (`str | os.PathLike`): the training folder.
        paths (`Iterable[str]`): images relative to ``root``.
        threshold (`int`, *optional*, defaults to 6): phash distance counted as a duplicate.
        similar (`int`, *optional*, defaults to 10): up to this distance a group is "similar, review".
        flips (`bool`, *optional*, defaults to False): a mirrored copy counts as the same image.
        trim (`bool`, *optional*, defaults to True): trim uniform borders before hashing.
        progress (*optional*): a ``Progress``; stepped per image, stops early when interrupted.

    Returns:
        `DuplicateReport`: groups (largest-then-sharpest keeper) and unreadable files.
    """
    root = Path(os.path.abspath(root))
    paths = list(paths)
    report = DuplicateReport()
    members: list[Member] = []
    if progress is not None:
        progress.begin(len(paths), "hashing images")
    for rel in paths:
        if progress is not None and progress.interrupted:
            break
        try:
            members.append(fingerprint(root, rel, trim=trim))
        except Exception as exc:
            report.unreadable.append((rel, str(exc)))
        if progress is not None:
            progress.step(1)
    if progress is not None:
        progress.end()
    n = len(members)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        h = np.array([m.phash for m in members], dtype=np.uint64)
        dist = _pairwise(h, h)
        if flips:
            hf = np.array([m.phash_flip for m in members], dtype=np.uint64)
            dist = np.minimum(dist, _pairwise(h, hf))
        shas = [m.sha256 for m in members]
        ii, jj = np.nonzero(np.triu(dist <= similar, k=1))
        for i, j in zip(ii.tolist(), jj.tolist()):
            parent[find(i)] = find(j)
        first: dict[str, int] = {}
        for i, sha in enumerate(shas):
            if sha in first:
                parent[find(i)] = find(first[sha])
            else:
                first[sha] = i
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    for idx in groups.values():
        if len(idx) < 2:
            continue
        ms = [members[i] for i in idx]
        worst = int(max(dist[a, b] for a in idx for b in idx)) if n else 0
        if len({m.sha256 for m in ms}) == 1:
            kind = "exact"
        elif worst <= threshold:
            kind = "duplicate"
        else:
            kind = "similar"
        report.groups.append(Group(kind, ms, _keeper(ms), worst))
    report.groups.sort(key=lambda g: ({"exact": 0, "duplicate": 1, "similar": 2}[g.kind], g.keeper))
    return report


def _names(folder: str, extensions: list[str], base: str) -> list[str]:
    return [f"{folder}{base}{ext}" for ext in extensions]


def plan_move_duplicates(root: str | os.PathLike, report: DuplicateReport, *, include_similar: bool = False) -> Plan:
    """Move every non-keeper (and its caption) to ``<root>/_duplicates/<same relative path>``.

    A name already taken there (an earlier run moved a file of that name) gets a ``_dup`` suffix,
    image and caption alike, so one old file never blocks the move of the others.

    Args:
        root (`str | os.PathLike`): the training folder.
        report (`DuplicateReport`): from :func:`find_duplicates` (the user may have changed keepers).
        include_similar (`bool`, *optional*, defaults to False): also move "similar" groups' others.
    """
    root = Path(os.path.abspath(root))
    plan = Plan("duplicates")
    planned = PlannedPaths(root)
    moving = {p for g in report.groups if g.kind != "similar" or include_similar for p in g.others}
    kept_stems = {Path(m.path).with_suffix("").as_posix() for g in report.groups for m in g.members if m.path not in moving}
    for g in report.groups:
        if g.kind == "similar" and not include_similar:
            for p in g.others:
                plan.skipped.append((p, f"similar to {g.keeper} (distance {g.distance}): review by hand, or move them "
                                        "too (--include-similar; 'Also move similar')"))
            continue
        for p in g.others:
            cap = Path(p).with_suffix(CAPTION_EXTENSION).as_posix()
            moves_cap = (Path(p).with_suffix("").as_posix() not in kept_stems and (root / cap).is_file()
                         and not any(c.path == cap for c in plan.changes))
            src = Path(p)
            folder = f"{DUPLICATES_DIR}/{src.parent.as_posix()}/" if src.parent.as_posix() != "." else f"{DUPLICATES_DIR}/"
            exts = [src.suffix] + ([CAPTION_EXTENSION] if moves_cap else [])
            group = planned.first_free(name_groups(src.stem, "dup", partial(_names, folder, exts)))
            if group is None:
                plan.skipped.append((p, f"no free name for it in {folder}; empty {DUPLICATES_DIR} first"))
                continue
            renamed = "" if group[0] == f"{DUPLICATES_DIR}/{p}" else f" ({DUPLICATES_DIR}/{p} was taken)"
            plan.changes.append(Change(p, "move", new_path=group[0],
                                       description=f"{g.kind} of {g.keeper} (kept: larger or sharper){renamed}"))
            planned.add(group[0], p)
            if Path(p).with_suffix("").as_posix() in kept_stems:
                plan.skipped.append((cap, f"caption also belongs to a kept image; left in place for {p}"))
            elif moves_cap:
                plan.changes.append(Change(cap, "move", new_path=group[1], description="its caption"))
                planned.add(group[1], p)
    return plan
