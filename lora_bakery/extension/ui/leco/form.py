"""The LECO form by field name: UI values ↔ :class:`LecoConfig` (no gradio here).

Every widget has a name in :data:`FIELDS` with its dotted config path, so handlers pass values by
name, never by position (STYLE.md §4), and validation is the config's own (errors name the field).
The form edits the first prompt entry; further entries loaded from a TOML file are kept aside
(``extra_entries``) and trained too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lora_bakery.trainer.leco import LecoConfig

#: widget name -> dotted path in the config dict ("prompts.0.x" = the first entry).
FIELDS: dict[str, str] = {
    "target": "prompts.0.target",
    "positive": "prompts.0.positive",
    "negative": "prompts.0.unconditional",
    "neutral": "prompts.0.neutral",
    "action": "prompts.0.action",
    "guidance_scale": "prompts.0.guidance_scale",
    "resolution": "prompts.0.resolution",
    "dynamic_resolution": "prompts.0.dynamic_resolution",
    "batch_size": "prompts.0.batch_size",
    "attributes": "attributes",
    "anchors": "anchors",
    "dim": "network.dim",
    "alpha": "network.alpha",
    "modules": "network.modules",
    "conv_dim": "network.conv_dim",
    "steps": "training.steps",
    "lr": "training.lr",
    "optimizer": "training.optimizer",
    "precision": "training.precision",
    "bidirectional": "training.bidirectional",
    "anchor_weight": "training.anchor_weight",
    "max_denoising_steps": "training.max_denoising_steps",
    "seed": "training.seed",
    "output_dir": "saving.output_dir",
    "output_name": "saving.output_name",
    "save_every": "saving.save_every",
    "overwrite": "saving.overwrite",
    "resume": "saving.resume",
    "preview_enabled": "preview.enabled",
    "preview_prompt": "preview.prompt",
    "preview_negative": "preview.negative_prompt",
    "multipliers": "preview.multipliers",
    "preview_seed": "preview.seed",
    "preview_width": "preview.width",
    "preview_height": "preview.height",
    "preview_steps": "preview.steps",
}
NAMES: tuple[str, ...] = tuple(FIELDS)
_INTS = {"resolution", "batch_size", "dim", "conv_dim", "steps", "max_denoising_steps", "seed", "save_every",
         "preview_seed", "preview_width", "preview_height", "preview_steps"}


def _split(text: Any, sep: str) -> list[str]:
    return [part.strip() for part in str(text or "").split(sep) if part.strip()]


def _multipliers(text: Any) -> list[float]:
    try:
        return [float(v) for v in _split(text, ",")]
    except ValueError:
        raise ValueError(f"preview weights must be numbers separated by commas, got {text!r}") from None


def _to_config_value(name: str, value: Any) -> Any:
    if name == "attributes":
        return _split(value, ",")
    if name == "anchors":
        return [{"prompt": line} for line in _split(value, "\n")]
    if name == "multipliers":
        return _multipliers(value)
    if name in ("positive", "neutral", "resume"):
        return str(value) if str(value or "").strip() else None
    if name == "conv_dim":
        return int(value) if value else None
    if name in _INTS and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def to_config(values: Mapping[str, Any], extra_entries: Sequence[dict[str, Any]] = ()) -> LecoConfig:
    """Build (and validate) the config from the form.

    Args:
        values (`Mapping[str, Any]`): widget name -> value (names from :data:`FIELDS`).
        extra_entries (`Sequence[dict]`, *optional*): prompt entries 2.. from a loaded file.

    Returns:
        `LecoConfig`

    Raises:
        ConfigError: a bad value (named by its config path).
    """
    data: dict[str, Any] = {"prompts": [{}]}
    for name, path in FIELDS.items():
        if name not in values:
            continue
        value = _to_config_value(name, values[name])
        if value is None:
            continue
        keys = path.split(".")
        node: Any = data
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node.setdefault(key, {})
        node[keys[-1]] = value
    data["prompts"].extend(dict(e) for e in extra_entries)
    return LecoConfig.from_dict(data)


def from_config(config: LecoConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Form values for ``config`` (its first entry in the form) and the entries beyond the first."""
    data = config.to_dict(skip_none=False)
    entries = data.get("prompts") or [{}]
    values: dict[str, Any] = {}
    for name, path in FIELDS.items():
        keys = path.split(".")
        node: Any = {**data, "prompts": entries}
        for key in keys:
            node = node[int(key)] if key.isdigit() else (node or {}).get(key)
        if name == "attributes":
            node = ", ".join(node or [])
        elif name == "anchors":
            node = "\n".join(a["prompt"] for a in node or [])
        elif name == "multipliers":
            node = ", ".join(f"{v:g}" for v in node or [])
        elif node is None:
            node = 0 if name == "conv_dim" else ""
        values[name] = node
    return values, [dict(e) for e in entries[1:]]


def defaults() -> dict[str, Any]:
    """The form's initial values: the config defaults with the guide's skirt preset."""
    from lora_bakery.trainer.leco import preset

    return from_config(LecoConfig.from_dict(preset("skirt length (guide)")))[0]


__all__ = ["FIELDS", "NAMES", "defaults", "from_config", "to_config"]
