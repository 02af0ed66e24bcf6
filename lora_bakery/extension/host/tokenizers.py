"""Find the CLIP tokenizer(s) for a single-file checkpoint without touching the network.

Single-file checkpoints carry no tokenizer, and LoRA Bakery never downloads one behind the
user's back. We look, in order, in: a folder the user names, ``tokenizer``/``tokenizer_2``
folders beside the checkpoint, and the local Hugging Face cache (the repos diffusers itself
would use). When nothing is found the error lists every place tried and the one command that
fixes it, instead of a transformers traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import HostError

# Hugging Face repos (and subfolders) whose tokenizer files match each text encoder.
CLIP_L_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("openai/clip-vit-large-patch14", None),
    ("stable-diffusion-v1-5/stable-diffusion-v1-5", "tokenizer"),
    ("runwayml/stable-diffusion-v1-5", "tokenizer"),
    ("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer"),
)
CLIP_G_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer_2"),
    ("laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", None),
)
TOKENIZER_FILES = ("vocab.json", "merges.txt")

FIX_HINT = (
    "Fix: put the tokenizer folder(s) beside the checkpoint ({beside}), or pass --tokenizer DIR "
    "(a folder with vocab.json and merges.txt, or with tokenizer/ and tokenizer_2/ inside), or run once "
    "with network: huggingface-cli download openai/clip-vit-large-patch14 vocab.json merges.txt "
    "tokenizer_config.json special_tokens_map.json"
)


def _is_tokenizer_dir(path: Path) -> bool:
    return all((path / name).is_file() for name in TOKENIZER_FILES)


def _load_dir(path: Path) -> Any:
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(path), local_files_only=True)


def _load_cached(repo: str, subfolder: str | None) -> Any | None:
    from transformers import CLIPTokenizer

    kwargs = {"subfolder": subfolder} if subfolder else {}
    try:
        return CLIPTokenizer.from_pretrained(repo, local_files_only=True, **kwargs)
    except Exception:  # not in the cache (OSError/ValueError/EnvironmentError depending on version)
        return None


def _candidate_dirs(index: int, checkpoint: Path, user_dir: Path | None) -> list[Path]:
    """Folders to try for text encoder ``index`` (0 = CLIP-L, 1 = OpenCLIP bigG), best first."""
    sub = "tokenizer" if index == 0 else "tokenizer_2"
    dirs: list[Path] = []
    if user_dir is not None:
        dirs += [user_dir / sub, user_dir]
    dirs += [checkpoint.parent / sub, checkpoint.parent / checkpoint.stem / sub]
    return dirs


def find_tokenizers(checkpoint: str | Path, count: int, user_dir: str | Path | None = None) -> list[Any]:
    """Load ``count`` CLIP tokenizers (1 for SD1.x, 2 for SDXL) for ``checkpoint``, offline.

    Args:
        checkpoint (`str` or `Path`): the single-file checkpoint the tokenizers are for.
        count (`int`): how many text encoders the model has.
        user_dir (`str` or `Path`, *optional*): a folder the user named.

    Returns:
        `list[CLIPTokenizer]`: one per text encoder. SDXL's second tokenizer is the same BPE as the
        first but pads with ``!``; when only the first is found it is reused with that padding.

    Raises:
        `HostError`: listing every place tried and how to fix it.
    """
    checkpoint = Path(checkpoint)
    user = Path(user_dir) if user_dir else None
    if user is not None and not user.is_dir():
        raise HostError(f"Tokenizer folder not found: {user}")
    found: list[Any] = []
    tried: list[str] = []
    for index in range(count):
        tok = None
        for folder in _candidate_dirs(index, checkpoint, user):
            tried.append(str(folder))
            if _is_tokenizer_dir(folder):
                tok = _load_dir(folder)
                break
        if tok is None:
            sources: Sequence[tuple[str, str | None]] = CLIP_L_SOURCES if index == 0 else CLIP_G_SOURCES
            for repo, sub in sources:
                tried.append(f"HF cache: {repo}" + (f"/{sub}" if sub else ""))
                tok = _load_cached(repo, sub)
                if tok is not None:
                    break
        if tok is None and index == 1 and found:
            tok = _second_from_first(found[0])
        if tok is None:
            beside = checkpoint.parent / ("tokenizer" if index == 0 else "tokenizer_2")
            raise HostError(
                f"No CLIP tokenizer found for text encoder {index + 1} of {checkpoint.name}. Looked in: "
                + "; ".join(tried) + ". " + FIX_HINT.format(beside=beside)
            )
        found.append(tok)
    return found


def _second_from_first(first: Any) -> Any:
    """SDXL's tokenizer_2: CLIP-L's vocabulary, padded with ``!`` as the SGM embedder does."""
    import copy

    second = copy.deepcopy(first)
    second.pad_token = "!"
    return second
