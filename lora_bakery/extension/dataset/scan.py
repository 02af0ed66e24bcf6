"""Scan a training folder: concept folders, image headers and caption facts, cached by path+mtime+size.

Only image headers are read (well-formed PNG/JPEG by ``headers.py``'s parsers, everything else by
``Image.open``; pixels are never decoded), plus the file's last bytes to catch truncated downloads. Results are cached in ``<root>/.bakery/scan-cache.json``
keyed by each file's (mtime_ns, size), so a warm rescan costs one ``stat`` per file. The cache stores
facts; problems are derived from the facts and the current :class:`ScanOptions` every time.
Mask folders (``masks/``) are never concepts; ``maskcheck`` checks every image against its mask.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from lora_bakery.extension.dataset import captionfacts
from lora_bakery.extension.dataset.captionfacts import CaptionInfo, Problem
from lora_bakery.extension.dataset.headers import exif_orientation, fast_facts, has_alpha
from lora_bakery.extension.dataset.maskcheck import MaskFolder, check_masks
from lora_bakery.extension.dataset.safety import atomic_write_bytes
from lora_bakery.trainer.data.folders import (
    BAKERY_DIR,
    CAPTION_EXTENSION,
    is_image_name,
    is_skipped_dir,
    parse_concept_folder,
)
from lora_bakery.trainer.data.folders import problems as folder_problems
from lora_bakery.trainer.data.pixels import tail_ok as _tail_ok  # the trainer's own end-marker check

CACHE_NAME = "scan-cache.json"
CACHE_VERSION = 2  # 2: caption "lines" counts line 1 plus the non-blank lines after it
_FAST_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg"})
_16BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


@dataclass(frozen=True)
class ScanOptions:
    """What counts as a problem.

    Args:
        max_caption_bytes (`int`, defaults to 1024): larger captions mean "the tagger went insane" (recipes.md).
        max_tags (`int`, defaults to 80): more tags than this is flagged the same way.
        caption_extension (`str`, defaults to ``.txt``).
        deep (`bool`, defaults to False): also decode every image (slow; finds corrupt pixel data).
    """

    max_caption_bytes: int = 1024
    max_tags: int = 80
    caption_extension: str = CAPTION_EXTENSION
    deep: bool = False


@dataclass
class ImageInfo:
    """One image: header facts, problems, and its caption."""

    path: str
    file_size: int
    mtime_ns: int
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    has_alpha: bool = False
    orientation: int = 1
    frames: int = 1
    problems: list[Problem] = field(default_factory=list)
    caption: CaptionInfo | None = None

    @property
    def usable(self) -> bool:
        """False when kohya could not train on it (an error-level problem)."""
        return not any(p.level == "error" for p in self.problems)

    @property
    def display_size(self) -> tuple[int, int]:
        """Size as viewers show it (EXIF orientations 5-8 swap the sides); kohya uses ``width``×``height``."""
        return (self.height, self.width) if self.orientation in (5, 6, 7, 8) else (self.width, self.height)


@dataclass
class FolderInfo:
    """A concept folder (``N_name``), a plain folder, or the root itself (``path == ""``)."""

    path: str
    name: str
    repeats: int | None
    concept: str
    images: list[ImageInfo] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


@dataclass
class ScanResult:
    """Everything :func:`scan` found."""

    root: Path
    folders: list[FolderInfo]
    problems: list[Problem] = field(default_factory=list)
    mask_folders: list[MaskFolder] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    seconds: float = 0.0

    def images(self) -> Iterator[tuple[FolderInfo, ImageInfo]]:
        """Every (folder, image) pair."""
        for f in self.folders:
            for im in f.images:
                yield f, im

    @property
    def image_count(self) -> int:
        return sum(len(f.images) for f in self.folders)


# ---------------------------------------------------------------- header facts (cached)

_FORMAT_HINT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP",
                ".avif": "AVIF"}


def _open(f, ext: str) -> Image.Image:
    """``Image.open`` trying the format the extension names first (≈2× faster), then every format."""
    hint = _FORMAT_HINT.get(ext)
    if hint is not None:
        try:
            return Image.open(f, formats=[hint])
        except Image.UnidentifiedImageError:
            f.seek(0)
    return Image.open(f)


def read_header(path: str | os.PathLike, size: int, deep: bool = False) -> dict:
    """Header facts of one image file (never decodes pixels unless ``deep``); errors become facts, never raise.

    Returns:
        `dict`: ``width height mode format alpha orientation frames`` plus ``error`` / ``bomb`` /
        ``truncated`` when found.
    """
    if size == 0:
        return {"error": "zero-byte file"}
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if not deep and ext in _FAST_EXTENSIONS:
        try:
            with open(path, "rb") as f:
                facts = fast_facts(f, size, ext)
                if facts is not None:
                    if not _tail_ok(facts["format"], f, size):
                        facts["truncated"] = True
                    return facts
        except Exception:  # noqa: BLE001 - the fast parser never decides a failure: Pillow's path reports it
            pass
    return pillow_header(path, size, deep)


def pillow_header(path: str | os.PathLike, size: int, deep: bool = False) -> dict:
    """:func:`read_header` through ``Image.open`` only (every format; the reference for ``headers.py``)."""
    if size == 0:
        return {"error": "zero-byte file"}
    ext = os.path.splitext(os.fspath(path))[1].lower()
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with _open(f, ext) as im:
                d = {"width": im.width, "height": im.height, "mode": im.mode, "format": im.format or "",
                     "alpha": has_alpha(im), "orientation": 1, "frames": 1}
                raw = im.info.get("exif")
                if raw:
                    try:
                        d["orientation"] = exif_orientation(raw)
                    except Exception:
                        d["exif_error"] = True
                d["frames"] = int(getattr(im, "n_frames", 1) or 1)
                if Image.MAX_IMAGE_PIXELS is not None and im.width * im.height > Image.MAX_IMAGE_PIXELS:
                    d["bomb"] = f"{im.width}x{im.height} = {im.width * im.height:,} pixels"
                elif deep:
                    im.load()
                if not _tail_ok(d["format"], f, size):
                    d["truncated"] = True
                return d
    except Image.DecompressionBombError as exc:
        return {"error": f"decompression bomb (Pillow refuses to open it): {exc}", "bomb": str(exc)}
    except Image.UnidentifiedImageError:
        return {"error": "unreadable: not an image Pillow can read (corrupt header or wrong extension)"}
    except Exception as exc:  # Pillow raises many types for bad files (UnidentifiedImageError, OSError, SyntaxError…)
        if deep and "truncated" in str(exc):
            return {"error": f"truncated or corrupt image data: {exc}", "truncated": True}
        return {"error": f"unreadable: {type(exc).__name__}: {exc}"}


def image_problems(d: dict) -> list[Problem]:
    """Problems for one image's header facts (see :func:`read_header`)."""
    out: list[Problem] = []
    if "error" in d:
        code = "zero-byte" if d["error"] == "zero-byte file" else ("bomb" if "bomb" in d else "unreadable")
        out.append(Problem(code, d["error"] + " — the trainer stops on it, or leaves it out with "
                                              "training.skip_bad_images; remove or replace it.", "error"))
        return out
    if "bomb" in d:
        out.append(Problem("huge", f"huge image ({d['bomb']}): Pillow warns it may be a decompression bomb; "
                                   "downscale it before training.", "warning"))
    if d.get("truncated"):
        out.append(Problem("truncated", "the file ends early (cut download?): the trainer stops before caching, or "
                                        "leaves it out with training.skip_bad_images (bakery train --skip-bad-images); "
                                        "re-download or re-save it.", "error"))
    if d.get("orientation", 1) != 1:
        out.append(Problem("exif-rotation", f"EXIF orientation {d['orientation']}: kohya ignores it and trains on "
                                            "the unrotated pixels; 'convert-png' (Convert to PNG) applies the rotation.", "warning"))
    if d.get("alpha"):
        out.append(Problem("alpha", "has transparency: kohya trains on whatever colour hides under it; "
                                    "run 'remove-alpha' (onto white).", "warning"))
    if d.get("frames", 1) > 1:
        out.append(Problem("animated", f"{d['frames']} frames: kohya trains on the first only; 'convert-png' "
                                       "(Convert to PNG) saves every frame.", "warning"))
    if d.get("mode") in _16BIT_MODES:
        out.append(Problem("16-bit", f"mode {d['mode']}: the trainer scales it to 8 bits exactly as 'convert-png' "
                                     "does (kohya's plain convert('RGB') would clip it to white).", "info"))
    if d.get("mode") == "CMYK":
        out.append(Problem("cmyk", "CMYK colours: converted naively to RGB by the trainer; colours may shift.", "info"))
    return out


# ---------------------------------------------------------------- cache

def cache_path(root: str | os.PathLike) -> Path:
    return Path(root) / BAKERY_DIR / CACHE_NAME


def _load_cache(root: Path) -> dict:
    try:
        data = json.loads(cache_path(root).read_text(encoding="utf-8"))
        if data.get("version") == CACHE_VERSION:
            return data
    except (OSError, ValueError):
        pass
    return {"version": CACHE_VERSION, "images": {}, "captions": {}, "masks": {}}


def _save_cache(root: Path, images: dict, captions: dict, masks: dict) -> None:
    data = {"version": CACHE_VERSION, "images": images, "captions": captions, "masks": masks}
    try:
        atomic_write_bytes(cache_path(root), json.dumps(data, separators=(",", ":")).encode("utf-8"))
    except OSError:  # a read-only dataset is still scannable, just not cached
        pass


# ---------------------------------------------------------------- scan

def _folder_entries(folder: Path) -> tuple[list[os.DirEntry], dict[str, os.DirEntry], list[os.DirEntry]]:
    """(images, files by name, subfolders) of one folder."""
    images, files, dirs = [], {}, []
    with os.scandir(folder) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                if not is_skipped_dir(e.name):
                    dirs.append(e)
            elif e.is_file():
                files[e.name] = e
                if is_image_name(e.name):
                    images.append(e)
    images.sort(key=lambda e: e.name)
    return images, files, dirs


def scan(root: str | os.PathLike, options: ScanOptions = ScanOptions(), *, use_cache: bool = True,
         progress=None) -> ScanResult:
    """Scan a training root.

    Args:
        root (`str | os.PathLike`): the training folder (parent of the ``N_name`` folders).
        options (`ScanOptions`, *optional*): problem thresholds.
        use_cache (`bool`, *optional*, defaults to True): read and update ``.bakery/scan-cache.json``.
        progress (*optional*): a ``Progress`` (``begin/step/end``); stepped once per folder.

    Returns:
        `ScanResult`: folders with their images, problems and cache statistics.
    """
    t0 = time.perf_counter()
    root = Path(os.path.abspath(root))
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    cache = _load_cache(root) if use_cache else {"images": {}, "captions": {}}
    old_img, old_cap, old_mask = cache["images"], cache["captions"], cache.get("masks", {})
    new_img: dict = {}
    new_cap: dict = {}
    new_mask: dict = {}
    result = ScanResult(root, [])
    root_images, root_files, subdirs = _folder_entries(root)
    todo = [(root, "", root_images, root_files)]
    for d in sorted(subdirs, key=lambda e: e.name):
        ims, files, nested = _folder_entries(Path(d.path))
        todo.append((Path(d.path), d.name, ims, files, nested))  # type: ignore[arg-type]
    if progress is not None:
        progress.begin(len(todo), "scanning")
    for item in todo:
        folder, name, ims, files = item[:4]
        if name:
            repeats, concept = parse_concept_folder(name)
            info = FolderInfo(name, name, repeats, concept)
            info.problems += [Problem("folder-name", m, "warning") for m in folder_problems(name)]
            nested_count = sum(_count_images(Path(n.path)) for n in item[4])
            if nested_count:
                info.problems.append(Problem("nested", f"{nested_count} image(s) in subfolders of '{name}' are ignored: "
                                                       "kohya reads only the folder itself.", "warning"))
            if not ims:
                info.problems.append(Problem("empty-folder", f"'{name}' holds no images.", "warning"))
        else:
            info = FolderInfo("", root.name, None, "")
            if ims:
                result.problems.append(Problem("root-images", f"{len(ims)} image(s) sit directly in the training folder: "
                                                              "kohya reads only subfolders named 'N_name'; move them into one.", "warning"))
        stems: dict[str, list[str]] = {}
        for e in ims:
            rel = f"{name}/{e.name}" if name else e.name
            st = e.stat()
            key = [st.st_mtime_ns, st.st_size]
            hit = old_img.get(rel)
            if hit is not None and hit["k"] == key:
                facts = hit["d"]
                result.cache_hits += 1
            else:
                facts = read_header(e.path, st.st_size, options.deep)
                result.cache_misses += 1
            new_img[rel] = {"k": key, "d": facts}
            im = ImageInfo(rel, st.st_size, st.st_mtime_ns, facts.get("width", 0), facts.get("height", 0),
                           facts.get("mode", ""), facts.get("format", ""), bool(facts.get("alpha")),
                           facts.get("orientation", 1), facts.get("frames", 1), image_problems(facts))
            stem = os.path.splitext(e.name)[0]
            stems.setdefault(stem, []).append(e.name)
            cap_name = stem + options.caption_extension
            ce = files.get(cap_name)
            if ce is None:
                im.caption = CaptionInfo(exists=False)
            else:
                crel = f"{name}/{cap_name}" if name else cap_name
                cst = ce.stat()
                ckey = [cst.st_mtime_ns, cst.st_size]
                chit = old_cap.get(crel)
                cfacts = chit["d"] if chit is not None and chit["k"] == ckey else captionfacts.read_facts(ce.path, cst.st_size)
                new_cap[crel] = {"k": ckey, "d": cfacts}
                im.caption = captionfacts.caption_info(cfacts)
            im.caption.problems = captionfacts.caption_problems(im.caption, options.max_caption_bytes, options.max_tags)
            info.images.append(im)
        for stem, names in stems.items():
            if len(names) > 1:
                for im in info.images:
                    if os.path.splitext(os.path.basename(im.path))[0] == stem:
                        others = ", ".join(n for n in names if n != os.path.basename(im.path))
                        im.problems.append(Problem("shared-caption", f"shares the caption '{stem}{options.caption_extension}' "
                                                                     f"with {others}; rename one.", "warning"))
        if name or info.images:
            result.folders.append(info)
        if progress is not None:
            progress.step(1)
    if not any(f.repeats for f in result.folders):
        result.problems.append(Problem("no-concepts", "no folder named 'N_name' (e.g. '10_mychar'): kohya would find "
                                                      "no data.", "warning"))
    result.mask_folders = check_masks(result, old_mask, new_mask)
    if use_cache and (new_img != old_img or new_cap != old_cap or new_mask != old_mask):
        _save_cache(root, new_img, new_cap, new_mask)
    if progress is not None:
        progress.end()
    result.seconds = time.perf_counter() - t0
    return result


def _count_images(folder: Path) -> int:
    n = 0
    for _dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not is_skipped_dir(d)]
        n += sum(1 for f in filenames if is_image_name(f))
    return n
