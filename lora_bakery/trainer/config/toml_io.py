"""TOML reading (tomllib / tomli) and a small writer for the value types the config holds.

Why an own writer: the config needs only tables, arrays of tables, strings, numbers, booleans and
arrays of those, and no extra dependency inside a webui is worth that. Output is deterministic
(fields in declaration order), so a saved config diffs cleanly.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from ..atomic import write_text_atomic
from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - Python 3.10 (A1111 on 3.10): tomli is in lora_bakery/deps.py
    import tomli as _toml

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def loads(text: str, source: str = "") -> dict[str, Any]:
    """Parse TOML text, turning syntax errors into :class:`ConfigError` with the file and line."""
    try:
        return _toml.loads(text)
    except _toml.TOMLDecodeError as exc:
        raise ConfigError("", f"{source or 'TOML'}: {exc}") from None


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file (UTF-8)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError("", f"{path} is not UTF-8 text") from None
    return loads(text, str(path))


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _string(key)


def _string(value: str) -> str:
    # JSON string escapes (\" \\ \n \t \uXXXX) are all valid TOML basic-string escapes; DEL is not
    # escaped by json but must be in TOML.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML: {value!r}")


def _is_table(value: Any) -> bool:
    return isinstance(value, dict)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def _emit(lines: list[str], table: dict[str, Any], path: list[str], inline_dicts: frozenset[str]) -> None:
    """Scalars of ``table`` first (TOML requires it), then sub-tables, then arrays of tables."""
    for key, value in table.items():
        if value is None:
            continue
        if (_is_table(value) and key not in inline_dicts) or _is_table_array(value):
            continue
        lines.append(f"{_key(key)} = {_value(value)}")
    for key, value in table.items():
        if _is_table(value) and key not in inline_dicts:
            sub = path + [key]
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in sub) + "]")
            _emit(lines, value, sub, inline_dicts)
    for key, value in table.items():
        if _is_table_array(value):
            sub = path + [key]
            for item in value:
                lines.append("")
                lines.append("[[" + ".".join(_key(p) for p in sub) + "]]")
                _emit(lines, item, sub, inline_dicts)


def dumps(data: dict[str, Any], *, header: str = "", inline_dicts: frozenset[str] = frozenset()) -> str:
    """Serialise nested dicts to TOML.

    Args:
        data (`dict`): tables as dicts, arrays of tables as lists of dicts; ``None`` values skipped.
        header (`str`, *optional*): comment lines put at the top (without ``#``).
        inline_dicts (`frozenset[str]`, *optional*): keys whose dict values are written inline
            (free-form values such as ``custom_attributes``).

    Returns:
        `str`: TOML text ending in a newline.
    """
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    body: list[str] = []
    _emit(body, data, [], inline_dicts)
    while body and body[0] == "":
        body.pop(0)
    if lines and body:
        lines.append("")
    return "\n".join(lines + body) + "\n"


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and ``os.replace`` (never half a file)."""
    return write_text_atomic(path, text)
