"""The flat faces of the config: ``{"network.dim": 32, …}`` for the UI, and argparse for the CLI.

Why dotted names: the UI addresses every widget by field name, never by position (STYLE.md §4,
the traintrain anti-example), and a dotted path is unique across sections while staying readable
on the command line (``--network.dim 32``). Dataset blocks are lists of tables and are edited as a
table in the UI, so only ``dataset.train_data_dir``, ``dataset.reg_data_dir`` and
``dataset.general.*`` are flat.
"""

from __future__ import annotations

import argparse
import typing
from typing import Any

from .errors import ConfigError
from .fields import describe
from .train import TrainConfig


def fields() -> list[dict[str, Any]]:
    """Every flat field: name, type, default, help, group, choices, bounds (for UI and ``--help``)."""
    return [row for row in describe(TrainConfig) if row["name"] != "version"]


def to_flat(config: TrainConfig) -> dict[str, Any]:
    """``{"network.dim": 32, …}`` for every flat field (``None`` included: the UI shows "unset")."""
    out: dict[str, Any] = {}
    for row in fields():
        obj: Any = config
        for part in row["name"].split("."):
            obj = getattr(obj, part)
        out[row["name"]] = obj
    return out


def from_flat(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Build a config from flat values, on top of ``base`` (default: the defaults).

    Args:
        values (`dict`): dotted name → value; unknown names raise :class:`ConfigError`.
        base (`TrainConfig`, *optional*): supplies everything not in ``values`` (and the dataset blocks).

    Returns:
        `TrainConfig`: validated.
    """
    data = (base or TrainConfig()).to_dict(skip_none=False)
    known = {row["name"] for row in fields()}
    for name, value in values.items():
        if name not in known:
            raise ConfigError(name, "unknown setting")
        node = data
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return TrainConfig.from_dict(_drop_none(data))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _scalar_parser(hint: Any):
    args = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_origin(hint) else [hint]
    if bool in args:
        return _parse_bool
    if float in args:
        return float
    if int in args:
        return int
    return str


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--section.field`` options for every flat field; all default to "not given".

    Lists take several values (``--network.block_dims 4 4 8 …``, ``--optimizer.args weight_decay=0.01``);
    booleans take ``true``/``false``. Help text and choices come from the fields.
    """
    groups: dict[str, argparse._ArgumentGroup] = {}
    for row in fields():
        section = row["name"].split(".")[0]
        group = groups.setdefault(section, parser.add_argument_group(section))
        hint = row["type"]
        list_hint = next((a for a in (hint, *typing.get_args(hint)) if typing.get_origin(a) is list), None)
        kwargs: dict[str, Any] = {"dest": row["name"], "default": argparse.SUPPRESS}
        default = row["default"]
        kwargs["help"] = f"{row['help']} (default: {default!r})"
        if list_hint is not None:
            item = typing.get_args(list_hint)[0]
            kwargs["nargs"] = "*"
            kwargs["type"] = _scalar_parser(item)
        elif typing.get_origin(hint) is dict or hint is dict:
            continue  # free-form tables only in TOML
        else:
            kwargs["type"] = _scalar_parser(hint)
            kwargs["metavar"] = row["name"].rsplit(".", 1)[-1].upper()
        if row.get("choices") and list_hint is None:
            kwargs["choices"] = list(row["choices"])
        group.add_argument("--" + row["name"], **kwargs)
    return parser


def from_args(namespace: argparse.Namespace, base: TrainConfig | None = None) -> TrainConfig:
    """The config ``base`` (e.g. loaded from a TOML file) with the options given on the command line."""
    given = {k: v for k, v in vars(namespace).items() if "." in k}
    return from_flat(given, base)
