"""Saving and loading network files in kohya/LyCORIS layout, with kohya's metadata and hashes.

Public API:

- :func:`save_network` (atomic, never overwrites unless asked, fp16 by default, adds ``sshs_*`` hashes)
  and :func:`load_network` (safetensors only).
- :func:`stringify_metadata` / :func:`parse_metadata`, :func:`base_model_metadata`,
  :func:`tag_frequency`, :func:`dataset_dirs`, :func:`bucket_info`.
- :func:`precalculate_safetensors_hashes`, :func:`file_addnet_hash`, :func:`model_hash`, :func:`calculate_sha256`.
- ``run_files``: the names every run gives its files and the host-model / ``modelspec.*`` metadata
  (shared by the LoRA loop and LECO).
"""

from __future__ import annotations

from .files import PRECISIONS, cast_tensors, load_network, save_network, serialize, write_atomic
from .hashes import (
    addnet_hash_legacy,
    addnet_hash_safetensors,
    calculate_sha256,
    file_addnet_hash,
    model_hash,
    precalculate_safetensors_hashes,
)
from .metadata import (
    BASE_MODEL_VERSIONS,
    base_model_metadata,
    bucket_info,
    dataset_dirs,
    parse_metadata,
    stringify_metadata,
    tag_frequency,
)

__all__ = [
    "BASE_MODEL_VERSIONS",
    "PRECISIONS",
    "addnet_hash_legacy",
    "addnet_hash_safetensors",
    "base_model_metadata",
    "bucket_info",
    "calculate_sha256",
    "cast_tensors",
    "dataset_dirs",
    "file_addnet_hash",
    "load_network",
    "model_hash",
    "parse_metadata",
    "precalculate_safetensors_hashes",
    "save_network",
    "serialize",
    "stringify_metadata",
    "tag_frequency",
    "write_atomic",
]
