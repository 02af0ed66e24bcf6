"""lbw block-weight presets: the defaults, a user presets file, and parsing of vectors.

The defaults are lbw's ``DEF_WEIGHT_PRESET`` (reference/leco-lbw.md B3; all 17 values in BLOCKID17
order). User presets use lbw's ``lbwpresets.txt`` format, one ``NAME:v1,v2,...`` per line, so a
file written for lbw works here and the other way round. A vector of 12/17/20/26 values is spread
to 26 slots by block name (missing slots 0), exactly as lbw's ``to26``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lora_bakery.extension.host.lora_blocks import BLOCK_SETS, expand_block_weights
from lora_bakery.trainer.atomic import write_text_atomic

DEFAULT_PRESETS: dict[str, list[float]] = {
    "NONE": [0.0] * 17,
    "ALL": [1.0] * 17,
    "INS": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "IND": [1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "INALL": [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    "MIDD": [1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    "OUTD": [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0],
    "OUTS": [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
    "OUTALL": [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    "ALL0.5": [0.5] * 17,
}
DEFAULT_PRESETS = {k: [float(x) for x in v] for k, v in DEFAULT_PRESETS.items()}


def parse_vector(text: str) -> list[float]:
    """``"1,0,0.5,..."`` (commas or spaces) -> floats; the length must be 12, 17, 20 or 26.

    Raises:
        ValueError: a value that is not a number, or a bad length (the message says which).
    """
    items = [t for t in text.replace(",", " ").split() if t]
    values = []
    for item in items:
        try:
            values.append(float(item))
        except ValueError:
            raise ValueError(f"block weight {item!r} is not a number") from None
    if len(values) not in BLOCK_SETS:
        raise ValueError(f"a block-weight vector has 12, 17, 20 or 26 values, got {len(values)}")
    return values


def parse_presets(text: str) -> dict[str, list[float]]:
    """lbw's presets text: ``NAME:v1,v2,...`` per line; blank lines and ``#`` comments skipped.

    Raises:
        ValueError: a malformed line (with its line number).
    """
    presets: dict[str, list[float]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, values = line.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"line {number}: expected NAME:v1,v2,... got {line!r}")
        try:
            presets[name.strip()] = parse_vector(values)
        except ValueError as exc:
            raise ValueError(f"line {number} ({name.strip()}): {exc}") from None
    return presets


def format_presets(presets: Mapping[str, Sequence[float]]) -> str:
    """The inverse of :func:`parse_presets` (``g`` formatting: ``1``, ``0.5``)."""
    return "".join(f"{name}:{','.join(f'{v:g}' for v in values)}\n" for name, values in presets.items())


def load_presets(path: str | Path | None) -> dict[str, list[float]]:
    """The defaults, overridden/extended by a user presets file when it exists."""
    presets = {k: list(v) for k, v in DEFAULT_PRESETS.items()}
    if path is not None and Path(path).is_file():
        presets.update(parse_presets(Path(path).read_text(encoding="utf-8")))
    return presets


def save_presets(path: str | Path, presets: Mapping[str, Sequence[float]]) -> Path:
    """Write a presets file atomically (temp file + ``os.replace``)."""
    return write_text_atomic(path, format_presets(presets))


def resolve_blocks(value: str | Sequence[float], presets: Mapping[str, Sequence[float]] | None = None) -> list[float]:
    """A preset name (case-sensitive, as lbw) or a vector -> its values (12/17/20/26 long).

    Raises:
        ValueError: unknown name or bad vector.
    """
    if not isinstance(value, str):
        values = [float(v) for v in value]
        expand_block_weights(values)  # validates the length
        return values
    table = presets if presets is not None else DEFAULT_PRESETS
    key = value.strip()
    if key in table:
        return [float(v) for v in table[key]]
    if any(ch.isdigit() for ch in key) and ("," in key or " " in key):
        return parse_vector(key)
    raise ValueError(f"unknown block preset {key!r}; known: {', '.join(table)}")


__all__ = [
    "DEFAULT_PRESETS",
    "format_presets",
    "load_presets",
    "parse_presets",
    "parse_vector",
    "resolve_blocks",
    "save_presets",
]
