"""Where tagger models come from: a local folder, or SmilingWolf's repos through huggingface_hub.

A model folder holds ``model.onnx`` and ``selected_tags.csv`` (SmilingWolf's layout). A known
name (``wd-vit-tagger-v3`` or ``SmilingWolf/wd-vit-tagger-v3``) lives in ``<models_dir>/<name>/``
and is downloaded there on first use when online; offline, the error names the folder to fill by
hand. Repo list and P=R thresholds: reference/dataset-tools.md §1 (toshiaki ``interrogator_names.py``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lora_bakery.extension.tagger.errors import TaggerError

MODEL_FILE = "model.onnx"
LABELS_FILE = "selected_tags.csv"
FILES = (MODEL_FILE, LABELS_FILE)


@dataclass(frozen=True)
class KnownTagger:
    """A published tagger: its HF repo, generation and the threshold where precision = recall."""

    repo_id: str
    generation: str
    pr_threshold: float | None = None


def _known() -> dict[str, KnownTagger]:
    table = {}
    for arch, thr in {"vit": 0.3537, "convnext": 0.3685, "convnextv2": 0.371, "swinv2": 0.3771, "moat": 0.3771}.items():
        table[f"wd-v1-4-{arch}-tagger-v2"] = KnownTagger(f"SmilingWolf/wd-v1-4-{arch}-tagger-v2", "v2", thr)
    for arch, thr in {"vit": 0.2614, "convnext": 0.2682, "swinv2": 0.2653}.items():
        table[f"wd-{arch}-tagger-v3"] = KnownTagger(f"SmilingWolf/wd-{arch}-tagger-v3", "v3", thr)
    table["wd-vit-large-tagger-v3"] = KnownTagger("SmilingWolf/wd-vit-large-tagger-v3", "v3")
    table["wd-eva02-large-tagger-v3"] = KnownTagger("SmilingWolf/wd-eva02-large-tagger-v3", "v3")
    return table


KNOWN_TAGGERS: dict[str, KnownTagger] = _known()
DEFAULT_TAGGER = "wd-v1-4-vit-tagger-v2"  # the baking guide's recommendation


def default_models_dir() -> Path:
    """``$BAKERY_TAGGERS``, else ``$BAKERY_CACHE/wd-taggers``, else ``~/.cache/lora-bakery/wd-taggers``."""
    if os.environ.get("BAKERY_TAGGERS"):
        return Path(os.environ["BAKERY_TAGGERS"])
    root = os.environ.get("BAKERY_CACHE") or Path.home() / ".cache" / "lora-bakery"
    return Path(root) / "wd-taggers"


def missing_files(folder: Path) -> list[str]:
    """Which of ``model.onnx`` / ``selected_tags.csv`` are not in ``folder``."""
    return [name for name in FILES if not (folder / name).is_file()]


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _download(repo_id: str, folder: Path, allow_network: bool) -> None:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub ships with both environments
        raise TaggerError(f"huggingface_hub is not installed; put {', '.join(FILES)} into {folder}") from exc
    folder.mkdir(parents=True, exist_ok=True)
    for name in missing_files(folder):
        try:
            hf_hub_download(repo_id, name, local_dir=str(folder), local_files_only=not allow_network)
        except Exception as exc:  # offline, no such repo, HTTP error: all end the same for the user
            why = "offline" if not allow_network else f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise TaggerError(
                f"could not download {name} of {repo_id} ({why}). Download {', '.join(FILES)} from "
                f"https://huggingface.co/{repo_id} and put them into {folder}"
            ) from exc


def resolve_model(spec: str | Path, models_dir: str | Path | None = None, *, download: bool = True) -> Path:
    """The folder of a tagger, downloading a known one when needed and allowed.

    Args:
        spec (`str` or `Path`): a folder with ``model.onnx`` + ``selected_tags.csv``, a known name
            (``wd-vit-tagger-v3``), or an HF repo id (``SmilingWolf/wd-vit-tagger-v3``, or a fork).
        models_dir (`str` or `Path`, *optional*): where named models live; defaults to
            :func:`default_models_dir`.
        download (`bool`, defaults to `True`): fetch missing files through huggingface_hub
            (never when ``HF_HUB_OFFLINE`` is set).

    Returns:
        `Path`: a folder holding both files.

    Raises:
        TaggerError: unknown name, incomplete folder, or download impossible; the message says
            which folder to fill.
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        missing = missing_files(path)
        if missing:
            raise TaggerError(f"tagger folder {path} lacks {', '.join(missing)}")
        return path
    text = str(spec).strip()
    if path.is_absolute() or text.startswith((".", "~")) or text.count("/") > 1 or "\\" in text:
        raise TaggerError(f"tagger folder {path} does not exist")
    name = text.split("/", 1)[1] if text.startswith("SmilingWolf/") else text
    known = KNOWN_TAGGERS.get(name)
    if known is None and text.count("/") != 1:
        raise TaggerError(
            f"unknown tagger {text!r}: give a folder with {', '.join(FILES)}, an HF repo id, "
            f"or one of {', '.join(KNOWN_TAGGERS)}"
        )
    repo_id = known.repo_id if known else text
    folder = Path(models_dir) if models_dir is not None else default_models_dir()
    folder = folder / repo_id.split("/", 1)[1]
    if not missing_files(folder):
        return folder
    if not download:
        raise TaggerError(
            f"tagger {repo_id} is not downloaded. Download {', '.join(FILES)} from "
            f"https://huggingface.co/{repo_id} and put them into {folder}"
        )
    _download(repo_id, folder, allow_network=not _offline())
    return folder
