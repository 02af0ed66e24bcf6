"""Are we running inside Forge? Which sub-tabs cannot work there yet?

Forge (lllyasviel/stable-diffusion-webui-forge, and reForge) is an A1111 fork whose model is a
``backend`` engine instead of ldm/sgm modules, loaded under ``torch.inference_mode()``
(reference/a1111-host.md §4 "Forge differences"). Until a ForgeHost exists, the tabs that train on
or generate with the loaded model are disabled there with one message; Dataset work needs no
model and stays available.

Detection relies on what every Forge generation ships at the webui root and imports at startup:
the ``modules_forge`` package (``modules_forge/forge_version.py`` holds ``version = '...'``, e.g.
``'1.0.2v1.10.1'``). Forge 2 adds a top-level ``backend`` package, which we only trust together
with ``backend.diffusion_engine`` because ``backend`` is a common name.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

#: Sub-tab keys (see ``lora_bakery.extension.ui.context.TAB_KEYS``) that need a Host on the
#: loaded model: baking and LECO train on it, Reg images and Compare generate with it.
FORGE_UNSUPPORTED: frozenset[str] = frozenset({"bake", "leco", "reg", "compare"})

#: What those tabs show instead of their controls.
FORGE_MESSAGE = (
    "This tab needs the loaded model, and Forge's model is not supported yet "
    "(Forge loads its weights for inference only). Dataset tools work here; for baking, "
    "use AUTOMATIC1111 webui or the standalone app (`bakery app`)."
)


def _found(name: str) -> bool:
    if name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken parent package, or a module with __spec__ None
        return False


def detect_forge() -> str | None:
    """Name and version of the Forge we run in, or ``None`` in A1111/standalone.

    Returns:
        `str | None`: e.g. ``"Forge 1.0.2v1.10.1"``, ``"Forge"`` when the version is unknown.
    """
    if not _found("modules_forge"):
        if not (_found("backend") and _found("backend.diffusion_engine")):
            return None
        return "Forge"
    try:
        version = getattr(importlib.import_module("modules_forge.forge_version"), "version", None)
    except Exception:  # noqa: BLE001 - an old Forge without forge_version, or a broken install
        version = None
    return f"Forge {version}" if version else "Forge"
