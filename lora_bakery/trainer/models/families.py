"""The one dispatch table from architecture name to model family."""

from __future__ import annotations

from . import sd1, sdxl
from .base import Family

FAMILIES: dict[str, Family] = {
    sd1.ARCHITECTURE: sd1.FAMILY,
    sdxl.ARCHITECTURE: sdxl.FAMILY,
}


def family_for(architecture: str) -> Family:
    """The :class:`Family` for ``architecture``.

    Raises:
        NotImplementedError: for ``"sd2"`` (detected, not supported yet).
        ValueError: for anything else unknown.
    """
    if architecture in FAMILIES:
        return FAMILIES[architecture]
    if architecture == "sd2":
        raise NotImplementedError("SD2 (OpenCLIP-H) checkpoints are detected but not supported yet")
    raise ValueError(f"unknown architecture {architecture!r}; expected one of {sorted(FAMILIES)} (or sd2)")
