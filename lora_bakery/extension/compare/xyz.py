"""Hook the Compare presets into A1111's X/Y/Z plot (the axes themselves are in ``host/a1111_xyz.py``).

``scripts/lora_bakery.py`` calls :func:`register_a1111_axes` from ``on_before_ui``; the presets are
re-read at each use, so presets saved in the Compare tab show up in the X/Y/Z dropdown.
"""

from __future__ import annotations

from collections.abc import Callable


def register_a1111_axes(presets_file: str | Callable[[], str | None] | None = None) -> bool:
    """Add "Bakery epoch" and "Bakery block preset" to A1111's X/Y/Z plot script (once).

    Args:
        presets_file (`str` or `Callable[[], str | None]`, *optional*): the user presets file, or a
            function returning it (e.g. reading a webui setting at each use).

    Returns:
        `bool`: whether the axes are registered (``False`` when the X/Y/Z script is not loaded).
    """
    from lora_bakery.extension.host.a1111_xyz import register_xyz_axes

    from .presets import load_presets

    def presets() -> dict[str, list[float]]:
        path = presets_file() if callable(presets_file) else presets_file
        return load_presets(path or None)

    return register_xyz_axes(presets)


__all__ = ["register_a1111_axes"]
