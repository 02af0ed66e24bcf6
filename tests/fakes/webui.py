"""Install the fake webui into ``sys.modules`` (``modules``, ``modules.*``, ``networks``, ``network``).

Use ``installed_fake_webui()`` in a fixture (it removes the fakes afterwards and resets their
state, so each test starts from an idle webui with no model loaded)::

    @pytest.fixture
    def fake_webui():
        with installed_fake_webui() as webui:
            yield webui
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .a1111 import (
    call_queue,
    devices,
    errors,
    fifo_lock,
    hashes,
    infotext_utils,
    lowvram,
    paths_internal,
    processing,
    progress,
    script_callbacks,
    sd_hijack,
    sd_hijack_clip,
    sd_models,
    shared,
    shared_state,
)
from .lora import network, networks
from .sd_model import build_fake_sd_model

SUBMODULES = {
    "fifo_lock": fifo_lock, "devices": devices, "shared_state": shared_state, "shared": shared, "progress": progress,
    "errors": errors, "call_queue": call_queue, "hashes": hashes, "sd_hijack": sd_hijack,
    "sd_hijack_clip": sd_hijack_clip, "sd_models": sd_models, "processing": processing,
    "script_callbacks": script_callbacks, "infotext_utils": infotext_utils, "paths_internal": paths_internal,
    "lowvram": lowvram,
}
_MISSING = object()


class FakeWebui:
    """Handle on the installed fakes: load a model, reach ``shared``/``state``/records."""

    def __init__(self) -> None:
        self._saved: dict[str, Any] = {}
        self.shared = shared
        self.call_queue = call_queue
        self.processing = processing
        self.networks = networks
        self.network = network
        self.progress = progress
        self.script_callbacks = script_callbacks
        self.sd_hijack = sd_hijack
        self.hashes = hashes
        self.infotext_utils = infotext_utils
        self.lowvram = lowvram
        self.devices = devices

    @property
    def state(self) -> shared_state.State:
        return shared.state

    def install(self) -> FakeWebui:
        package = importlib.import_module("tests.fakes.a1111")
        mapping: dict[str, Any] = {"modules": package, "networks": networks, "network": network}
        mapping.update({f"modules.{name}": mod for name, mod in SUBMODULES.items()})
        for name, mod in mapping.items():
            self._saved[name] = sys.modules.get(name, _MISSING)
            sys.modules[name] = mod
        self.reset()
        return self

    def reset(self) -> None:
        for mod in (shared, call_queue, progress, processing, networks, sd_hijack, script_callbacks, infotext_utils,
                    lowvram, devices):
            mod.reset()
        hashes.cache.clear()
        errors.reports.clear()
        networks.lora_dir = None

    def uninstall(self) -> None:
        for name, previous in self._saved.items():
            if previous is _MISSING:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
        self._saved.clear()
        self.reset()

    def load(self, checkpoint: str | Path, arch: str, **kwargs: Any) -> Any:
        """Build the fake model from ``checkpoint``, make it ``shared.sd_model`` and name its layers
        for the Lora extension (A1111 does that on model load)."""
        model = build_fake_sd_model(checkpoint, arch, **kwargs)
        shared.sd_model = model
        networks.assign_network_names_to_compvis_modules(model)
        return model


@contextlib.contextmanager
def installed_fake_webui() -> Iterator[FakeWebui]:
    """The fake webui in ``sys.modules`` for the duration of the ``with`` block."""
    webui = FakeWebui().install()
    try:
        yield webui
    finally:
        webui.uninstall()
