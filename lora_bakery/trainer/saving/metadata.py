"""kohya ``ss_*`` metadata: stringify, parse back, and the pieces computed from the model and data.

Every value in a safetensors header must be a string; kohya writes ``str(v)`` (``"None"``,
``"True"``, ``"0.0001"``) and JSON for the structured fields (``ss_tag_frequency``,
``ss_dataset_dirs``, ``ss_bucket_info``, ``ss_network_args``, ``ss_datasets``). A1111 decodes the
values that start with ``{`` as JSON (``sd_models.read_metadata_from_safetensors``).
Sources: sd-scripts ``train_network.py`` L1003-1222; reference/kohya-trainer.md §3.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .hashes import calculate_sha256, model_hash

# architecture -> (ss_base_model_version without "_v", ss_v2)
BASE_MODEL_VERSIONS: dict[str, tuple[str, bool]] = {
    "sd1": ("sd_v1", False),
    "sd2": ("sd_v2", True),
    "sdxl": ("sdxl_base_v1-0", False),
}


def stringify_metadata(values: Mapping[str, Any]) -> dict[str, str]:
    """Metadata values as kohya writes them: dicts/lists as JSON, everything else ``str(v)``.

    Args:
        values (`Mapping[str, Any]`): key -> value (``None``, bools, numbers, strings, dicts, lists).

    Returns:
        `dict[str, str]`: safe to pass to safetensors.
    """
    out = {}
    for key, value in values.items():
        if isinstance(value, (dict, list, tuple)):
            out[str(key)] = json.dumps(value, ensure_ascii=False)
        else:
            out[str(key)] = str(value)
    return out


def parse_metadata(metadata: Mapping[str, str]) -> dict[str, Any]:
    """Read metadata back as A1111 does: values starting with ``{`` (or ``[``) are JSON-decoded.

    Args:
        metadata (`Mapping[str, str]`): the safetensors ``__metadata__``.

    Returns:
        `dict[str, Any]`: the same keys; JSON values decoded, others kept as strings.
    """
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if isinstance(value, str) and value[:1] in ("{", "["):
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


def base_model_metadata(
    architecture: str,
    v_prediction: bool = False,
    checkpoint: str | Path | None = None,
    vae: str | Path | None = None,
    full_hashes: bool = True,
) -> dict[str, str]:
    """``ss_v2``, ``ss_base_model_version`` and, when the files exist, the checkpoint/VAE names and hashes.

    Args:
        architecture (`str`): ``"sd1"``, ``"sd2"`` or ``"sdxl"``.
        v_prediction (`bool`, defaults to `False`): adds ``_v`` to SD1/SD2 versions.
        checkpoint (`str | Path`, *optional*): the host checkpoint file (``ss_sd_model_name``,
            ``ss_sd_model_hash``, ``ss_new_sd_model_hash``).
        vae (`str | Path`, *optional*): a separate VAE file (``ss_vae_name``/``_hash``/``ss_new_vae_hash``).
        full_hashes (`bool`, defaults to `True`): compute the full-file sha256 (reads the whole file).

    Returns:
        `dict[str, str]`: the metadata entries.
    """
    if architecture not in BASE_MODEL_VERSIONS:
        raise ValueError(
            f"unknown architecture {architecture!r}; expected one of {sorted(BASE_MODEL_VERSIONS)}"
        )
    version, v2 = BASE_MODEL_VERSIONS[architecture]
    if v_prediction and architecture != "sdxl":
        version += "_v"
    out = {"ss_v2": str(v2), "ss_base_model_version": version}
    for prefix, path in (("sd_model", checkpoint), ("vae", vae)):
        if path is None or not os.path.isfile(path):
            continue
        out[f"ss_{prefix}_name"] = os.path.basename(path)
        out[f"ss_{prefix}_hash"] = model_hash(path)
        if full_hashes:
            out[f"ss_new_{prefix}_hash"] = calculate_sha256(path)
    return out


def tag_frequency(captions_by_dir: Mapping[str, Iterable[str]]) -> dict[str, dict[str, int]]:
    """``ss_tag_frequency``: per subset folder basename, how often each tag appears (not x repeats).

    Tags are the raw caption split on ``,``, stripped and lower-cased (kohya ``BaseDataset.set_tag_frequency``).

    Args:
        captions_by_dir (`Mapping[str, Iterable[str]]`): subset folder (path or basename) -> captions.

    Returns:
        `dict`: ``{"10_sks dog": {"sks": 12, "dog": 12}}``.
    """
    out: dict[str, dict[str, int]] = {}
    for folder, captions in captions_by_dir.items():
        counts: Counter[str] = Counter()
        for caption in captions:
            counts.update(tag.strip().lower() for tag in caption.split(",") if tag.strip())
        out[os.path.basename(os.path.normpath(folder))] = dict(counts)
    return out


def dataset_dirs(subsets: Mapping[str, tuple[int, int]]) -> dict[str, dict[str, int]]:
    """``ss_dataset_dirs``: folder basename -> ``{"n_repeats", "img_count"}`` (regularisation folders left out).

    Args:
        subsets (`Mapping[str, tuple[int, int]]`): folder -> (repeats, image count).
    """
    return {
        os.path.basename(os.path.normpath(folder)): {"n_repeats": repeats, "img_count": count}
        for folder, (repeats, count) in subsets.items()
    }


def bucket_info(buckets: Iterable[tuple[tuple[int, int], int]], mean_ar_error: float) -> dict[str, Any]:
    """``ss_bucket_info``: ``{"buckets": {i: {"resolution": [w, h], "count": n}}, "mean_img_ar_error": e}``."""
    return {
        "buckets": {
            str(i): {"resolution": [int(w), int(h)], "count": int(n)} for i, ((w, h), n) in enumerate(buckets)
        },
        "mean_img_ar_error": float(mean_ar_error),
    }
