"""Optimizer arguments written as ``k=v`` text, typed and checked against the optimizer's signature.

Users paste kohya-style ``--optimizer_args`` (``decouple=True weight_decay=0.01 betas=0.9,0.99``).
kohya passes each value through ``ast.literal_eval``, so ``true`` is a string, ``d_coef=2,`` is a
tuple and a wrong name is a ``TypeError`` deep inside the optimizer (bmaltais #3052). Here values
are typed the same way, forgivingly (``true``/``false`` are booleans, stray trailing commas are
dropped, ``inf`` is a float), and each one is checked against the optimizer's own ``__init__``
before anything is built, so the error names the bad argument and lists the accepted ones.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

OptimizerArgs = Mapping[str, Any] | Iterable[str] | str | None
# Arguments build_optimizer sets itself; users set them elsewhere.
RESERVED = {"params": "the trained parameters", "lr": "the learning-rate field"}
# whitespace or commas, then the next "name=": the boundary between two k=v items
_ITEM_SPLIT = re.compile(r"[\s,]+(?=[A-Za-z_][A-Za-z0-9_]*\s*=)")
_BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}


class OptimizerArgError(ValueError):
    """A ``k=v`` optimizer argument that cannot work; the message names it and says what would."""


def parse_value(raw: str) -> Any:
    """Type one ``k=v`` value the way kohya does (``ast.literal_eval``), plus a few forgiving cases.

    ``True``/``true`` → bool, ``None``/``none`` → None, ``2`` → int, ``1e-2``/``inf`` → float,
    ``0.9,0.99`` or ``(0.9, 0.99)`` or ``[0.9, 0.99]`` → tuple; anything else stays a string.
    A trailing comma (``d_coef=2,``) is a typo, not a 1-tuple.

    Args:
        raw (`str`): the text after ``=``.

    Returns:
        The typed value.
    """
    text = raw.strip().rstrip(",").strip()
    lowered = text.lower()
    if lowered in _BOOL_WORDS:
        return _BOOL_WORDS[lowered]
    if lowered in ("none", "null"):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        try:
            return float(text)  # inf, -inf, nan
        except ValueError:
            pass
        if "," in text:  # 0.9,inf or True,False: type each part
            return tuple(parse_value(part) for part in text.split(","))
        return text
    return tuple(value) if isinstance(value, list) else value


def parse_optimizer_args(args: OptimizerArgs) -> dict[str, Any]:
    """Turn ``k=v`` items (a list, or one string separated by spaces/newlines) or a dict into typed kwargs.

    Args:
        args (`dict`, `list[str]`, `str` or `None`): e.g. ``["decouple=True", "betas=0.9,0.99"]`` or
            ``"decouple=True betas=0.9,0.99"``. Dict values that are strings are typed too.

    Returns:
        `dict[str, Any]`

    Raises:
        OptimizerArgError: an item without ``=``, an empty name, or the same name twice.
    """
    if args is None:
        return {}
    if isinstance(args, Mapping):
        return {str(k).strip(): parse_value(v) if isinstance(v, str) else v for k, v in args.items()}
    items = [part for item in ([args] if isinstance(args, str) else args) for part in _split_items(str(item))]
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise OptimizerArgError(
                f"optimizer arg {item!r} is not of the form name=value (e.g. weight_decay=0.01)"
            )
        if key in out:
            raise OptimizerArgError(f"optimizer arg {key!r} is given twice")
        out[key] = parse_value(raw)
    return out


def _split_items(text: str) -> list[str]:
    """Split ``"a=1 b=(0.9, 0.99), c=2"`` before each ``name=``, so spaces and commas inside a value survive."""
    text = text.strip()
    return [part for part in _ITEM_SPLIT.split(text) if part.strip()] if text else []


def accepted_args(cls: type) -> dict[str, inspect.Parameter] | None:
    """The keyword arguments ``cls.__init__`` takes besides ``params`` and ``lr``.

    Args:
        cls (`type`): an optimizer class.

    Returns:
        `dict` name → parameter, or `None` when it takes ``**kwargs`` (anything goes).
    """
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {
        name: p
        for name, p in params.items()
        if name not in ("self", *RESERVED) and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_type(optimizer: str, name: str, value: Any, default: Any) -> Any:
    """Coerce ``value`` to the kind of ``default``, or raise naming the argument and an example."""
    if default is inspect.Parameter.empty or default is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise OptimizerArgError(
            f"{optimizer} arg {name}={value!r}: expected True or False (e.g. {name}=True)"
        )
    if _is_number(default):
        if _is_number(value):
            if isinstance(default, float) or not float(value).is_integer():
                return float(value)
            return int(value)
        raise OptimizerArgError(f"{optimizer} arg {name}={value!r}: expected a number (default {default!r})")
    if isinstance(default, tuple):
        if isinstance(value, tuple) and len(value) == len(default) and all(_is_number(v) for v in value):
            return tuple(float(v) for v in value)
        example = ",".join(str(v) for v in default)
        raise OptimizerArgError(
            f"{optimizer} arg {name}={value!r}: expected {len(default)} numbers separated by commas (e.g. {name}={example})"
        )
    return value


def validate_optimizer_args(optimizer: str, cls: type, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Check names and value kinds against ``cls.__init__``; return kwargs with numbers coerced.

    Args:
        optimizer (`str`): the name the user chose (for messages).
        cls (`type`): the optimizer class.
        kwargs (`Mapping[str, Any]`): typed args from :func:`parse_optimizer_args`.

    Returns:
        `dict[str, Any]`

    Raises:
        OptimizerArgError: an unknown or reserved name (with a close match and the full list), or a
            value of the wrong kind.
    """
    accepted = accepted_args(cls)
    out: dict[str, Any] = {}
    for name, value in kwargs.items():
        if name in RESERVED:
            raise OptimizerArgError(
                f"do not put {name!r} in the optimizer args; set it with {RESERVED[name]}"
            )
        if accepted is None:
            out[name] = value
            continue
        if name not in accepted:
            close = difflib.get_close_matches(name, list(accepted), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise OptimizerArgError(
                f"{optimizer} has no argument {name!r}.{hint} Accepted: {', '.join(accepted) or '(none)'}"
            )
        if isinstance(value, float) and math.isnan(value):
            raise OptimizerArgError(f"{optimizer} arg {name}=nan is not a usable value")
        out[name] = _check_type(optimizer, name, value, accepted[name].default)
    return out


__all__ = [
    "OptimizerArgError",
    "OptimizerArgs",
    "accepted_args",
    "parse_optimizer_args",
    "parse_value",
    "validate_optimizer_args",
]
