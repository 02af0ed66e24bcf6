"""Field declarations and the validating base class every config section derives from.

Why one base: each section states its fields once (default, type, help text, bounds, UI group) and
gets coercion and validation in ``__post_init__`` for free, so a dataclass built from TOML, from the
UI's flat dict or from argparse is checked the same way and a bad value names its field
(STYLE.md §4, after peft's ``field(metadata={"help": ...})`` + ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable
from typing import Any, ClassVar

from .errors import ConfigError

_MISSING = dataclasses.MISSING


def opt(
    default: Any,
    help: str,
    *,
    group: str = "",
    choices: Iterable[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
    below: float | None = None,
    kohya: str | None = None,
) -> Any:
    """Declare one config field.

    Args:
        default (`Any`): the default; lists and dicts are copied per instance.
        help (`str`): one or two sentences shown as UI tooltip and ``--help``.
        group (`str`, *optional*): the UI group (``"General"``, ``"Network"``, ``"Buckets"`` …).
        choices (`Iterable`, *optional*): the allowed values.
        min (`float`, *optional*): smallest allowed value (inclusive); for lists, per element.
        max (`float`, *optional*): largest allowed value (inclusive).
        below (`float`, *optional*): exclusive upper bound (dropout rates are ``< 1``).
        kohya (`str`, *optional*): the kohya sd-scripts argument name, for importing kohya configs.

    Returns:
        `dataclasses.Field`: the field, with its description under ``metadata``.
    """
    meta = {
        "help": help,
        "group": group,
        "choices": tuple(choices) if choices is not None else None,
        "min": min,
        "max": max,
        "below": below,
        "kohya": kohya,
    }
    if isinstance(default, (list, dict)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    if isinstance(default, type) and issubclass(default, Section):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _type_name(hint: Any) -> str:
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Return ``value`` converted to ``hint`` where the conversion is lossless, else raise.

    TOML writes ``lr = 1`` as an int and gradio sends ``32.0`` for an integer box; both are accepted.
    A bool is never taken for a number (``True`` for ``dim`` is a mistake, not 1).
    """
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, name)
            except ConfigError:
                continue
        raise ConfigError(name, f"expected {_type_name(hint)}, got {value!r}")
    if origin in (list, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(name, f"expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, f"expected a table, got {value!r}")
        return dict(value)
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, f"expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(name, f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(name, f"expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if math.isnan(float(value)):
            raise ConfigError(name, "must be a number, not NaN")
        return float(value)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(name, f"expected text, got {value!r}")
    if isinstance(hint, type) and issubclass(hint, Section):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            try:
                return hint.from_dict(value)
            except ConfigError as exc:
                raise exc.within(name) from None
        raise ConfigError(name, f"expected a table, got {value!r}")
    return value


def _check_bounds(value: Any, meta: dict, name: str) -> None:
    if value is None:
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_bounds(item, meta, f"{name}[{i}]")
        return
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(name, f"{value!r} is not one of {listed}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if meta.get("min") is not None and value < meta["min"]:
        raise ConfigError(name, f"must be at least {meta['min']}, got {value}")
    if meta.get("max") is not None and value > meta["max"]:
        raise ConfigError(name, f"must be at most {meta['max']}, got {value}")
    if meta.get("below") is not None and value >= meta["below"]:
        raise ConfigError(name, f"must be below {meta['below']}, got {value}")


class Section:
    """Base of every config dataclass: coercion, bounds, cross-field ``check()``, dict I/O.

    Subclasses are ``@dataclass`` classes whose fields are declared with :func:`opt` and may
    override :meth:`check` for rules that involve several fields. Sub-sections (a field whose type
    is another ``Section``, or a list of them) are built from plain dicts automatically, and errors
    raised inside them come out prefixed with the path (``dataset.datasets[0].subsets[1].num_repeats``).
    """

    _hints_cache: ClassVar[dict[type, dict[str, Any]]] = {}

    @classmethod
    def _hints(cls) -> dict[str, Any]:
        hints = Section._hints_cache.get(cls)
        if hints is None:
            hints = typing.get_type_hints(cls)
            Section._hints_cache[cls] = hints
        return hints

    def __post_init__(self) -> None:
        hints = self._hints()
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            value = _coerce(value, hints[f.name], f.name)
            _check_bounds(value, dict(f.metadata), f.name)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Cross-field validation; raise :class:`ConfigError` naming the field. Default: nothing."""

    @classmethod
    def field_names(cls) -> list[str]:
        """The field names in declaration order."""
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Build from a plain dict (TOML table), rejecting unknown keys with a did-you-mean hint.

        Args:
            data (`dict`): field name → value; nested sections as dicts / lists of dicts.

        Returns:
            The section instance, validated.
        """
        if not isinstance(data, dict):
            raise ConfigError("", f"expected a table, got {data!r}")
        known = cls.field_names()
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(key, f"unknown setting{hint}")
            hint_type = cls._hints()[key]
            item_type = _section_item_type(hint_type)
            if item_type is not None and isinstance(value, list):
                built = []
                for i, item in enumerate(value):
                    try:
                        built.append(item if isinstance(item, item_type) else item_type.from_dict(item))
                    except ConfigError as exc:
                        raise exc.within(f"{key}[{i}]") from None
                value = built
            elif isinstance(hint_type, type) and issubclass(hint_type, Section) and isinstance(value, dict):
                try:
                    value = hint_type.from_dict(value)
                except ConfigError as exc:
                    raise exc.within(key) from None
            kwargs[key] = value
        return cls(**kwargs)

    def to_dict(self, *, skip_none: bool = True) -> dict[str, Any]:
        """Plain dict of the fields (nested sections as dicts); ``None`` values left out by default.

        ``None`` means "not set" everywhere in the config, and TOML has no null, so leaving them
        out is what makes the TOML round trip exact.
        """
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Section):
                value = value.to_dict(skip_none=skip_none)
            elif isinstance(value, list):
                value = [v.to_dict(skip_none=skip_none) if isinstance(v, Section) else v for v in value]
            if value is None and skip_none:
                continue
            out[f.name] = value
        return out


def _section_item_type(hint: Any) -> type | None:
    """``Subset`` for ``list[Subset]``, else ``None``."""
    if typing.get_origin(hint) is list:
        args = typing.get_args(hint)
        if args and isinstance(args[0], type) and issubclass(args[0], Section):
            return args[0]
    return None


def describe(cls: type[Section], prefix: str = "") -> list[dict[str, Any]]:
    """Every scalar field of a section tree with its dotted name, type, default and help.

    Used by the UI (tooltips, widget kinds, choices) and by argparse (``--help``).

    Args:
        cls (`type`): a :class:`Section` subclass.
        prefix (`str`, *optional*): dotted path of ``cls`` inside the tree.

    Returns:
        `list[dict]`: ``{"name", "type", "default", "help", "group", "choices", "min", "max", "below", "kohya"}``.
    """
    rows: list[dict[str, Any]] = []
    hints = cls._hints()
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        name = f"{prefix}{f.name}"
        if isinstance(hint, type) and issubclass(hint, Section):
            rows.extend(describe(hint, name + "."))
            continue
        if _section_item_type(hint) is not None:
            continue  # lists of sections (dataset blocks) are edited as tables, not flat fields
        default = f.default if f.default is not _MISSING else f.default_factory()  # type: ignore[misc]
        rows.append({"name": name, "type": hint, "default": default, **dict(f.metadata)})
    return rows
