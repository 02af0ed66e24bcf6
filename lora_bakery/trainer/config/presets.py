"""Presets: partial training configs in ``lora_bakery/trainer/presets/*.toml``.

Each file is an ordinary config TOML plus a ``[preset]`` table (``name``, ``description``); what a
preset leaves out keeps its default. Presets are data, so users can copy one and edit it.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import toml_io
from .errors import ConfigError
from .train import TrainConfig

PRESET_DIR = Path(__file__).resolve().parent.parent / "presets"


def _read(path: Path) -> tuple[dict, dict]:
    data = toml_io.load(path)
    meta = data.pop("preset", {})
    return meta, data


def list_presets(folder: Path | None = None) -> list[dict[str, str]]:
    """The presets in ``folder`` (default: the shipped ones), sorted by name.

    Returns:
        `list[dict]`: ``{"name", "description", "path"}`` per preset.
    """
    out = []
    for path in sorted((folder or PRESET_DIR).glob("*.toml")):
        meta, _ = _read(path)
        out.append(
            {
                "name": meta.get("name", path.stem),
                "description": meta.get("description", ""),
                "path": str(path),
            }
        )
    return sorted(out, key=lambda p: p["name"])


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def preset_path(name: str, folder: Path | None = None) -> Path:
    """The file of the preset called ``name``: display name or file stem, ignoring case and punctuation."""
    wanted = _norm(name)
    for row in list_presets(folder):
        if _norm(row["name"]) == wanted or _norm(Path(row["path"]).stem) == wanted:
            return Path(row["path"])
    names = ", ".join(p["name"] for p in list_presets(folder))
    raise ConfigError("preset", f"no preset {name!r}; available: {names}")


def load_preset(name: str, folder: Path | None = None) -> TrainConfig:
    """The config of a preset, validated (everything the preset leaves out has its default)."""
    path = preset_path(name, folder)
    _, data = _read(path)
    try:
        return TrainConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(exc.field, f"{exc.message} (in preset {path.name})") from None
