"""The model for headless runs (``python -m lora_bakery.trainer``, ``accelerate launch``): a
single-file checkpoint read with safetensors (never unpickled) plus offline CLIP tokenizers.

Inside a webui the Host supplies the model; this is the stand-in for processes that have no Host
(``trainer/`` may not import ``lora_bakery.extension``). Tokenizer lookup follows the Host's
(``extension/host/tokenizers.py``) in short: a folder given, ``tokenizer``/``tokenizer_2`` beside
the checkpoint, then the local Hugging Face cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_CACHED = {
    0: (("openai/clip-vit-large-patch14", None), ("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer")),
    1: (("stabilityai/stable-diffusion-xl-base-1.0", "tokenizer_2"), ("laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", None)),
}


@dataclass
class CheckpointParts:
    """The fields of the Host's ``ModelParts`` that :func:`~lora_bakery.trainer.train.train` reads."""

    architecture: str
    prediction: str
    parameters: Mapping[str, Any]
    tokenizers: list[Any] = field(default_factory=list)
    checkpoint_name: str = ""
    checkpoint_path: str | None = None
    checkpoint_hash: str | None = None
    legacy_hash: str | None = None
    clip_skip: int = 1


def _tokenizer(index: int, checkpoint: Path, user_dir: Path | None) -> Any:
    from transformers import CLIPTokenizer

    sub = "tokenizer" if index == 0 else "tokenizer_2"
    tried = []
    dirs = ([user_dir / sub, user_dir] if user_dir else []) + [checkpoint.parent / sub]
    for folder in dirs:
        tried.append(str(folder))
        if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
            return CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    for repo, subfolder in _CACHED[index]:
        tried.append(f"HF cache {repo}")
        try:
            kwargs = {"subfolder": subfolder} if subfolder else {}
            return CLIPTokenizer.from_pretrained(repo, local_files_only=True, **kwargs)
        except Exception:
            continue
    raise FileNotFoundError(
        f"no CLIP tokenizer for text encoder {index + 1} of {checkpoint.name}; looked in: {', '.join(tried)}. "
        "Put a tokenizer folder (vocab.json, merges.txt) beside the checkpoint or pass --tokenizer DIR."
    )


def load_checkpoint(path: str | Path, device: str = "cpu", tokenizer_dir: str | Path | None = None,
                    prediction: str = "eps") -> CheckpointParts:
    """Read a single-file SD1.5/SDXL ``.safetensors`` checkpoint and its tokenizers.

    Args:
        path (`str | Path`): the checkpoint.
        device (`str`, defaults to ``"cpu"``): where to load the tensors.
        tokenizer_dir (`str | Path`, *optional*): a folder with the tokenizer(s).
        prediction (`str`, defaults to ``"eps"``): single files do not say; ``"v"`` for v-prediction models.

    Returns:
        `CheckpointParts`

    Raises:
        ValueError: not a ``.safetensors`` file, or not an SD1.5/SDXL layout.
        FileNotFoundError: the file or a tokenizer is missing.
    """
    from safetensors.torch import load_file

    from ..models import detect_architecture

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"{path.name}: only .safetensors checkpoints are read (pickled files can run code)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    state = load_file(str(path), device=device)
    arch = detect_architecture(state.keys())
    if arch == "sd2":
        raise ValueError(f"{path.name} is an SD2 checkpoint; SD1.5 and SDXL are supported")
    user = Path(tokenizer_dir) if tokenizer_dir else None
    tokenizers = [_tokenizer(i, path, user) for i in range(2 if arch == "sdxl" else 1)]
    return CheckpointParts(arch, prediction, state, tokenizers, path.name, str(path))
