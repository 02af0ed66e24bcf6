"""Write and read network files: safetensors only, atomic, never overwriting unless asked.

One call writes one file: cast to the save precision (kohya ``--save_precision``, fp16 by default;
0-dim ``alpha`` included, bool/int tensors kept), add ``sshs_model_hash``/``sshs_legacy_hash``,
serialise with the metadata keys sorted (safetensors 0.4.2 writes them in hash-map order), write a
temporary file in the same folder (mode 0o666 minus the umask, as any file the webui writes), fsync,
then move it into place without replacing an existing file unless asked (a hard link makes "create
only if absent" atomic, which ``atomic.write_via_temp`` does not offer). A failed write (disk full)
leaves any previous file untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..atomic import TEMP_SUFFIX
from .hashes import precalculate_safetensors_hashes

PRECISIONS: dict[str, torch.dtype | None] = {
    "fp16": torch.float16,
    "float16": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp32": torch.float32,
    "float": torch.float32,
    "float32": torch.float32,
    "keep": None,
}


def cast_tensors(tensors: Mapping[str, torch.Tensor], precision: str | None) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU copies, floating tensors cast to ``precision`` (``None``/``"keep"``: as they are).

    Raises:
        ValueError: unknown precision name.
    """
    key = "keep" if precision is None else precision.lower()
    if key not in PRECISIONS:
        raise ValueError(f"unknown save precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[key]
    out = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        out[name] = tensor.contiguous()
    return out


def serialize(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bytes:
    """safetensors bytes with the metadata keys in sorted order (byte-stable across processes)."""
    from safetensors.torch import save

    data = save(dict(tensors), metadata=dict(metadata) or None)
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    if len(text) > length:
        return data
    return data[:8] + text.ljust(length, b" ") + data[8 + length :]


def _check_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    bad = sorted(k for k, v in metadata.items() if not isinstance(k, str) or not isinstance(v, str))
    if bad:
        raise TypeError(
            f"metadata values must be strings (use saving.stringify_metadata); not strings: {', '.join(bad[:5])}"
        )
    return dict(metadata)


def write_atomic(path: Path, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to ``path`` through a temporary sibling file; refuse to replace unless ``overwrite``.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is false.
        OSError: the write failed (the temporary file is removed, ``path`` untouched).
    """
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} already exists; not overwriting it")
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0o666 minus the umask (0644 under 022), like every other file the webui writes; mkstemp's
    # private 0600 would hide the LoRA from other users and services reading models/Lora
    temp = str(path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}"))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)  # atomic "create only if absent"
            except FileExistsError:
                raise FileExistsError(f"{path} already exists; not overwriting it") from None
            except OSError:  # filesystems without hard links
                if path.exists():
                    raise FileExistsError(f"{path} already exists; not overwriting it") from None
                os.replace(temp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def save_network(
    path: str | Path,
    tensors: Mapping[str, torch.Tensor] | Any,
    metadata: Mapping[str, str] | None = None,
    precision: str | None = "fp16",
    overwrite: bool = False,
    add_hashes: bool = True,
) -> Path:
    """Save a network file in kohya/LyCORIS layout.

    Args:
        path (`str | Path`): target ``.safetensors`` file.
        tensors (`Mapping[str, torch.Tensor]` or `Network`): file tensors, or a network (its
            ``kohya_state_dict()``; its ``metadata()`` is merged under ``metadata``).
        metadata (`Mapping[str, str]`, *optional*): string values only (see :func:`stringify_metadata`).
        precision (`str`, *optional*, defaults to ``"fp16"``): ``fp16``, ``bf16``, ``fp32`` or ``None`` to keep.
        overwrite (`bool`, defaults to `False`): replace an existing file (atomically).
        add_hashes (`bool`, defaults to `True`): add ``sshs_model_hash`` / ``sshs_legacy_hash``.

    Returns:
        `Path`: the written file.

    Raises:
        FileExistsError: the file exists and ``overwrite`` is false.
        TypeError: a metadata value is not a string.
    """
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"network files are .safetensors; got {path.name}")
    meta: dict[str, str] = {}
    if hasattr(tensors, "kohya_state_dict"):
        meta.update(tensors.metadata())
        tensors = tensors.kohya_state_dict()
    meta.update(_check_metadata(metadata or {}))
    saved = cast_tensors(tensors, precision)
    if add_hashes:
        model_hash, legacy_hash = precalculate_safetensors_hashes(saved, meta)
        meta["sshs_model_hash"] = model_hash
        meta["sshs_legacy_hash"] = legacy_hash
    write_atomic(path, serialize(saved, meta), overwrite)
    return path


def load_network(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read a network file (safetensors only; never unpickles).

    Args:
        path (`str | Path`): the ``.safetensors`` file.
        device (`str | torch.device`, defaults to ``"cpu"``): where to put the tensors.

    Returns:
        `tuple[dict[str, torch.Tensor], dict[str, str]]`: tensors and raw string metadata.

    Raises:
        ValueError: not a ``.safetensors`` file.
    """
    from safetensors import safe_open

    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise ValueError(f"only .safetensors network files are read (no pickles); got {path.name}")
    tensors = {}
    with safe_open(str(path), framework="pt", device=str(device)) as handle:
        metadata = dict(handle.metadata() or {})
        for key in handle.keys():
            tensors[key] = handle.get_tensor(key)
    return tensors, metadata
