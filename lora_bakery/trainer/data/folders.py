"""Training-folder conventions shared by the Dataset tab and the trainer (pure Python, no torch).

kohya's folder mode (``library/config_util.py``, ``DreamBoothDataset``) reads ``train_data_dir/N_name``:
the folder name is split on ``_``, the first token must be an integer repeat count, the rest is the
class token. Folders without a number are skipped silently, which is the most common "No data
found" mistake (bmaltais/kohya_ss #1725, #3374), so :func:`problems` says why a name will not work.
Images are read from the folder itself, not from subfolders.

Mask folders (``masks/``, the Dataset tab's default for masked-loss masks) hold grayscale images
with the training images' names. They are never concepts, never listed as training images and
never touched by the image tools: :func:`is_mask_folder` / :func:`excluded_dir_reason` are the one
rule the scan, the dataset operations and the trainer share, and :func:`mask_folder_for` says which
mask folder belongs to a concept folder.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

#: Caption files sit beside the image with the same stem (the community default; kohya's own default is ``.caption``).
CAPTION_EXTENSION = ".txt"

#: Folder names we own inside a training root; never treated as concepts and never listed.
BAKERY_DIR = ".bakery"
DUPLICATES_DIR = "_duplicates"
SKIP_DIRS = frozenset({BAKERY_DIR, DUPLICATES_DIR})

#: The mask folder the Dataset tab's Masks tool writes by default (``masks/<stem>.png`` or ``masks/10_chara/…``).
MASK_DIR = "masks"
#: Folder names (case-insensitive) that hold masks, wherever they sit in a training folder.
MASK_FOLDER_NAMES = frozenset({"masks", "mask"})

_BASE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"})
_REPEATS = re.compile(r"^([0-9]+)_(.*)$", re.DOTALL)

#: More than this many repeats is almost certainly a typo (kohya accepts it, the user rarely means it).
MAX_SENSIBLE_REPEATS = 1000


@functools.lru_cache(maxsize=1)
def avif_readable() -> bool:
    """Whether Pillow can open AVIF here: Pillow ≥ 11.3 wheels bundle it, A1111 venvs use ``pillow_avif``.

    Returns:
        `bool`: True when ``.avif`` is a registered Pillow extension (after trying ``import pillow_avif``).
    """
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a hard dependency
        return False
    try:
        import pillow_avif  # noqa: F401  (registers the plugin as an import side effect)
    except Exception:
        pass
    return ".avif" in Image.registered_extensions()


@functools.lru_cache(maxsize=1)
def image_extensions() -> frozenset[str]:
    """Lower-case extensions (with dot) of the images we train on: png jpg jpeg webp bmp gif, and avif where readable."""
    return _BASE_EXTENSIONS | ({".avif"} if avif_readable() else frozenset())


#: The image extensions readable in this process (see :func:`image_extensions`).
IMAGE_EXTENSIONS = image_extensions()


def is_image_name(name: str) -> bool:
    """True for a visible file name with an image extension (case-insensitive)."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def parse_concept_folder(name: str) -> tuple[int | None, str]:
    """Split a kohya concept folder name ``N_name`` into (repeats, name).

    Stricter than kohya's ``int(tokens[0])`` (which also accepts ``" 10"``, ``"-1"`` or ``"1_0"``'s
    leading part): only ASCII digits, a value ≥ 1, then an underscore. ``10_my char`` → ``(10, "my char")``.

    Args:
        name (`str`): the folder's base name.

    Returns:
        `tuple[int | None, str]`: ``(repeats, class name)``, or ``(None, name)`` when the name carries no
        usable repeat count (``0_x``, ``_x``, ``x_1``, ``x``).
    """
    m = _REPEATS.match(name)
    if not m or int(m.group(1)) < 1:
        return None, name
    return int(m.group(1)), m.group(2)


def concept_folder_name(repeats: int, name: str) -> str:
    """The folder name for ``repeats`` and ``name`` (inverse of :func:`parse_concept_folder`)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    return f"{int(repeats)}_{name}"


def problems(name: str) -> list[str]:
    """Readable reasons why kohya would skip or misread a concept folder name (empty when fine).

    Args:
        name (`str`): the folder's base name.

    Returns:
        `list[str]`: one sentence per problem, each saying how to fix it.
    """
    out: list[str] = []
    repeats, rest = parse_concept_folder(name)
    if repeats is not None:
        if not rest.strip():
            out.append(f"'{name}': no name after the repeat count; kohya uses it as the class token, e.g. '{repeats}_mychar'.")
        if repeats > MAX_SENSIBLE_REPEATS:
            out.append(f"'{name}': {repeats} repeats looks like a typo (more than {MAX_SENSIBLE_REPEATS}).")
        if rest != rest.strip():
            out.append(f"'{name}': the name has leading or trailing spaces.")
        return out
    lead = re.match(r"^\s*([+-]?[0-9]+)(.*)$", name, re.DOTALL)
    if lead and lead.group(1).lstrip("+-").isdigit() and lead.group(2).startswith("_"):
        n = int(lead.group(1))
        if name[0].isspace():
            out.append(f"'{name}': starts with a space; the repeat count must be the very first character.")
        elif n < 1:
            out.append(f"'{name}': {n} repeats trains none of its images; use 1 or more, e.g. '1{lead.group(2)}'.")
        else:
            out.append(f"'{name}': the repeat count must be plain digits, e.g. '{n}{lead.group(2)}'.")
    elif lead:
        out.append(f"'{name}': needs an underscore after the repeat count, e.g. '{lead.group(1).strip()}_{lead.group(2).strip() or 'name'}'.")
    elif re.search(r"_[0-9]+$", name):
        num = name.rsplit("_", 1)
        out.append(f"'{name}': the repeat count must come first: '{num[1]}_{num[0]}'.")
    else:
        out.append(f"'{name}': no repeat count; kohya skips folders not named 'N_name' (e.g. '10_{name.lstrip('_') or 'name'}').")
    return out


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The images directly inside ``folder`` (not in subfolders, as kohya reads them), sorted by name.

    Skips hidden files and anything that is not a regular file. Our own folders (``.bakery``,
    ``_duplicates``) are subfolders, so they are never listed.

    Args:
        folder (`str | os.PathLike`): the folder to list.

    Returns:
        `list[Path]`: image paths sorted by file name.
    """
    with os.scandir(folder) as it:
        found = [Path(e.path) for e in it if is_image_name(e.name) and e.is_file()]
    return sorted(found, key=lambda p: p.name)


def caption_path(image: str | os.PathLike, extension: str = CAPTION_EXTENSION) -> Path:
    """The caption file beside ``image``: same stem, ``extension`` (default ``.txt``)."""
    p = Path(image)
    return p.with_name(p.stem + extension)


def is_mask_folder(path: str | os.PathLike) -> bool:
    """True when the folder's own name is a mask folder name (``masks``, ``mask``; any case).

    Args:
        path (`str | os.PathLike`): a folder name or path (only its last part counts).
    """
    name = os.path.basename(os.path.normpath(os.fspath(path)))
    return name.lower() in MASK_FOLDER_NAMES


def in_mask_folder(rel: str | os.PathLike) -> bool:
    """True when a path relative to a training folder lies inside a mask folder (any of its folders)."""
    parts = Path(os.fspath(rel)).parts[:-1]
    return any(part.lower() in MASK_FOLDER_NAMES for part in parts)


def excluded_dir_reason(name: str) -> str | None:
    """Why a subfolder of a training folder is never a concept (and never scanned for images), or ``None``.

    Args:
        name (`str`): the folder's base name.

    Returns:
        `str | None`: a short reason ("hidden folder", "LoRA Bakery's backups and caches", "moved-out
        duplicates", "mask folder: masked-loss masks, not training images"), or ``None`` for a folder
        that may be a concept.
    """
    if name == BAKERY_DIR:
        return "LoRA Bakery's backups and caches"
    if name.startswith("."):
        return "hidden folder"
    if name == DUPLICATES_DIR:
        return "duplicates moved out of training"
    if is_mask_folder(name):
        return "mask folder: masked-loss masks, not training images"
    return None


def is_skipped_dir(name: str) -> bool:
    """True for hidden folders, our own (``.bakery``, ``_duplicates``) and mask folders: never concepts."""
    return excluded_dir_reason(name) is not None


def mask_folder_for(root: str | os.PathLike, concept: str) -> Path | None:
    """The mask folder of concept folder ``concept`` in training folder ``root``, or ``None``.

    Looked up in this order: ``root/masks/<concept>/`` (one mask folder per concept),
    ``root/<concept>/masks/`` (masks beside the images), ``root/masks/`` when it holds masks itself (one
    flat folder for every concept). The same rule for the scan's mask checks and for masked-loss training in folder mode.

    Args:
        root (`str | os.PathLike`): the training folder.
        concept (`str`): the concept folder's name (``10_chara``).
    """
    base = Path(root)
    for top in sorted(n for n in _subdirs(base) if is_mask_folder(n)):
        nested = base / top / concept
        if nested.is_dir():
            return nested
    inside = sorted(n for n in _subdirs(base / concept) if is_mask_folder(n))
    if inside:
        return base / concept / inside[0]
    flat = [base / n for n in sorted(_subdirs(base)) if is_mask_folder(n)]
    return next((f for f in flat if list_images(f)), None)


def find_mask(folder: str | os.PathLike, image: str | os.PathLike) -> Path | None:
    """The mask of ``image`` in mask folder ``folder``: same stem, any image extension (as kohya matches), or ``None``."""
    stem = Path(image).stem
    for ext in sorted(IMAGE_EXTENSIONS):
        for candidate in (Path(folder) / (stem + ext), Path(folder) / (stem + ext.upper())):
            if candidate.is_file():
                return candidate
    return None


def _subdirs(folder: Path) -> list[str]:
    try:
        with os.scandir(folder) as it:
            return [e.name for e in it if e.is_dir()]
    except OSError:
        return []
