"""The Bake form by field name: widget values ↔ :class:`TrainConfig` (no gradio here).

Every widget is one flat config field (``fields()``: dotted name, type, help, group, choices), so
handlers pass values by name, never by position (STYLE.md §4), and validation is the config's own:
a bad value raises :class:`ConfigError` naming the field (``"network.dim"``). What the flat form
cannot show (kohya ``[[datasets]]`` blocks from a loaded file) travels as JSON in a hidden textbox
(the *base*) and is kept on save and train.

Widget kinds, chosen from the field's type so a new config field appears in the form by itself:
``checkbox`` (bool), ``tristate`` (optional bool: unset / true / false), ``dropdown`` (choices),
``number`` (required int/float), ``lines`` (lists of text, one per line) and ``text`` (everything
else; empty = unset; lists of numbers comma-separated; tables as JSON).
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from lora_bakery.trainer.config import ConfigError, TrainConfig, fields, from_flat, to_flat

#: The guide's groups, in display order (``fields()`` rows carry one of these as ``group``).
GROUPS: tuple[str, ...] = ("General", "Data subsets", "Network", "Optimizer", "Saving", "Buckets", "Noise", "Samples")
#: Shown in a dropdown for "not set: the default applies".
UNSET = "(default)"

ROWS: tuple[dict[str, Any], ...] = tuple(fields())
BY_NAME: dict[str, dict[str, Any]] = {row["name"]: row for row in ROWS}
#: Widget names (= dotted config names), in the order handlers receive them.
NAMES: tuple[str, ...] = tuple(row["name"] for row in ROWS)


def _args(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def optional(row: Mapping[str, Any]) -> bool:
    """True when the field may be unset (``None``)."""
    return type(None) in _args(row["type"])


def _base(row: Mapping[str, Any]) -> list[Any]:
    return [a for a in _args(row["type"]) if a is not type(None)]


def is_int(row: Mapping[str, Any]) -> bool:
    """True for an integer field (its number box shows no decimals)."""
    return _base(row) == [int]


def kind(row: Mapping[str, Any]) -> str:
    """The widget kind of a field: checkbox, tristate, dropdown, number, lines or text."""
    base = _base(row)
    if row.get("choices"):
        return "dropdown"
    if base == [bool]:
        return "tristate" if optional(row) else "checkbox"
    if len(base) == 1 and base[0] in (int, float) and not optional(row):
        return "number"
    if len(base) == 1 and typing.get_origin(base[0]) is list and typing.get_args(base[0])[:1] == (str,):
        return "lines"
    return "text"


def choices(row: Mapping[str, Any]) -> list[str]:
    """Dropdown entries as text (``UNSET`` first for optional fields)."""
    if kind(row) == "tristate":
        return [UNSET, "true", "false"]
    listed = [str(c) for c in row.get("choices") or ()]
    return [UNSET, *listed] if optional(row) else listed


def _number(text: str, item: Any, name: str) -> Any:
    try:
        return int(text) if item is int else float(text)
    except ValueError:
        want = "an integer" if item is int else "a number"
        raise ConfigError(name, f"expected {want}, got {text!r}") from None


def _parse_text(row: Mapping[str, Any], text: str) -> Any:
    name = row["name"]
    for hint in _base(row):
        origin = typing.get_origin(hint)
        if hint is str:
            return text
        if hint in (int, float) and "," not in text:
            return _number(text, hint, name)
        if origin is list:
            (item,) = typing.get_args(hint)[:1] or (str,)
            parts = [p.strip() for p in text.split(",") if p.strip()]
            return [_number(p, item, name) if item in (int, float) else p for p in parts]
        if origin is dict:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(name, f"expected a JSON table like {{\"key\": 1}}: {exc.msg}") from None
            if not isinstance(value, dict):
                raise ConfigError(name, "expected a JSON table like {\"key\": 1}")
            return value
    raise ConfigError(name, f"cannot read {text!r}")


def from_widget(name: str, value: Any) -> Any:
    """The config value of widget ``name`` showing ``value`` (``None`` = unset).

    Raises:
        ConfigError: unreadable text (named by the field).
    """
    row = BY_NAME[name]
    k = kind(row)
    if k == "checkbox":
        return bool(value)
    if k in ("tristate", "dropdown"):
        if value in (None, "", UNSET):
            return None
        if k == "tristate":
            return str(value) == "true"
        for choice in row["choices"]:
            if str(choice) == str(value):
                return choice
        return value  # the config says it is not one of the choices
    if k == "number":
        if value in (None, ""):
            raise ConfigError(name, "a value is needed")
        return _number(str(value), _base(row)[0], name) if isinstance(value, str) else value
    if k == "lines":
        return [line.strip() for line in str(value or "").splitlines() if line.strip()]
    text = "" if value is None else str(value).strip()
    if not text:
        return "" if _base(row) == [str] and not optional(row) else None
    return _parse_text(row, text)


def to_widget(name: str, value: Any) -> Any:
    """What widget ``name`` shows for config value ``value``."""
    row = BY_NAME[name]
    k = kind(row)
    if k == "checkbox":
        return bool(value)
    if k == "tristate":
        return UNSET if value is None else ("true" if value else "false")
    if k == "dropdown":
        return UNSET if value is None else str(value)
    if k == "number":
        return value
    if k == "lines":
        return "\n".join(str(v) for v in value or [])
    if value is None:
        return ""
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, list):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def base_of(config: TrainConfig) -> str:
    """The hidden base: the parts the flat form does not show (``dataset.datasets`` blocks), as JSON."""
    blocks = config.to_dict().get("dataset", {}).get("datasets") or []
    return json.dumps({"dataset": {"datasets": blocks}}) if blocks else ""


def to_config(values: Mapping[str, Any], base: str | None = "") -> TrainConfig:
    """Build (and validate) the config from the form.

    Args:
        values (`Mapping[str, Any]`): widget name (dotted config name) -> widget value.
        base (`str`, *optional*): the hidden base JSON (:func:`base_of`); empty = defaults.

    Returns:
        `TrainConfig`

    Raises:
        ConfigError: a bad value, named by its field.
    """
    start = TrainConfig.from_dict(json.loads(base)) if str(base or "").strip() else None
    flat = {name: from_widget(name, value) for name, value in values.items() if name in BY_NAME}
    return from_flat(flat, start)


def from_config(config: TrainConfig) -> tuple[dict[str, Any], str]:
    """Widget values for ``config`` (every name in :data:`NAMES`) and its hidden base."""
    flat = to_flat(config)
    return {name: to_widget(name, flat[name]) for name in NAMES}, base_of(config)


def defaults() -> dict[str, Any]:
    """The form's initial values: the config defaults."""
    return from_config(TrainConfig())[0]


def grouped() -> dict[str, list[dict[str, Any]]]:
    """The field rows per group, in :data:`GROUPS` order (unknown groups last)."""
    out: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    for row in ROWS:
        out.setdefault(row.get("group") or "Other", []).append(row)
    return {g: rows for g, rows in out.items() if rows}


__all__ = ["BY_NAME", "GROUPS", "NAMES", "ROWS", "UNSET", "base_of", "choices", "defaults", "from_config",
           "from_widget", "grouped", "is_int", "kind", "optional", "to_config", "to_widget"]
