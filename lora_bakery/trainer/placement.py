"""Where the training views' weights live during a bake when the host keeps its model off the GPU
(A1111 ``--medvram`` / ``--lowvram``) or the U-Net is stored in fp8 (``training.fp8_base``).

Design: the trainer never moves the host's modules. The views are rebound instead: a component
brought "to the device" gets device copies of the host tensors (made directly in fp8 for the
U-Net's Linear/Conv weights under ``fp8_base``), a component "offloaded" points at the host's own
tensors again, which drops the copies. Derived views (VAE attention conv<->linear, OpenCLIP q/k/v
slices, ``text_projection`` transposed) are rebuilt from the key table each time, so no view
keeps a stale tensor. The host only has to (1) say which device the bake runs on, (2) free it of
its own modules first (:meth:`HostPlacement.release`: A1111's own ``send_everything_to_cpu``) and
(3) put everything back exactly afterwards (:meth:`HostPlacement.restore`).

The one case that touches host tensors: ``fp8_base`` while the host keeps the U-Net on the
device (no medvram). Holding the host's fp16 tensor next to the fp8 copy would save nothing, so
the host tensor is parked on the CPU for the run (``param.data`` = a CPU backup; on the CPU the
backup *is* the original tensor) and put back bitwise in :meth:`ViewPlacement.restore`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import torch

#: What can be placed: the U-Net, the VAE, and all text encoders together.
COMPONENTS = ("unet", "vae", "text_encoders")


@runtime_checkable
class HostPlacement(Protocol):
    """What a host that keeps its model off the device (A1111 medvram/lowvram) provides.

    Attributes:
        device (`torch.device`): where the bake runs (A1111 ``devices.device``).
        description (`str`): the host's mode for the log, e.g. ``"--medvram"``.
    """

    device: torch.device
    description: str

    def release(self) -> None:
        """Record the host's placement (first call only) and move its own modules off the device."""

    def restore(self) -> None:
        """Put every host tensor, and the host's own bookkeeping, back exactly as recorded."""


def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are the same one (``cuda`` means the current CUDA device; no index = 0 elsewhere)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False

    def index(d: torch.device) -> int:
        if d.index is not None:
            return d.index
        return torch.cuda.current_device() if d.type == "cuda" and torch.cuda.is_available() else 0

    return index(a) == index(b)


class ViewPlacement:
    """Moves the views' components between the device and the host's tensors, and gives all back.

    Args:
        views (`ModelViews`): the training views (built over ``parameters``).
        parameters (`Mapping[str, torch.Tensor]`): the host's tensors by checkpoint key.
        device (`torch.device`): where training runs.
        host (`HostPlacement`, *optional*): the host's side; ``None`` when the host's model is
            already where it computes (then only fp8 needs this class).
        fp8_keys (`frozenset[str]`, *optional*): checkpoint keys stored in ``torch.float8_e4m3fn``
            while the U-Net is on the device (see :mod:`..fp8`).

    Attributes:
        events (`list[tuple[str, str]]`): ``("to_device" | "offload", component)`` in call order.
        placed (`set[str]`): components now on the device.
    """

    def __init__(self, views: Any, parameters: Mapping[str, torch.Tensor], device: torch.device,
                 host: HostPlacement | None = None, fp8_keys: frozenset[str] = frozenset()) -> None:
        from .models import family_for

        self.views = views
        self.parameters = parameters
        self.device = torch.device(device)
        self.host = host
        self.fp8_keys = fp8_keys
        self.events: list[tuple[str, str]] = []
        self.placed: set[str] = set()
        self._components = family_for(views.architecture).components(views.configs)
        self._parked: dict[str, tuple[torch.Tensor, torch.device]] = {}

    # -- the modules of a component -----------------------------------------------------------
    def _modules(self, component: str) -> list[tuple[torch.nn.Module, Any]]:
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; one of {COMPONENTS}")
        modules = [self.views.unet, self.views.vae, *self.views.text_encoders]
        pairs = list(zip(modules, self._components))
        if component == "unet":
            return pairs[:1]
        if component == "vae":
            return pairs[1:2]
        return pairs[2:]

    # -- moves ----------------------------------------------------------------------------------
    def begin(self) -> None:
        """Free the device of the host's own modules (nothing to do without a host placement)."""
        if self.host is not None:
            self.host.release()

    def to_device(self, component: str) -> None:
        """Bind ``component``'s views to device copies of the host tensors (fp8 where configured)."""
        made: dict[str, torch.Tensor] = {}

        def source(key: str) -> torch.Tensor:
            if key not in made:
                made[key] = self._device_tensor(key)
            return made[key]

        for module, spec in self._modules(component):
            _rebind(module, spec, source)
        self.placed.add(component)
        self.events.append(("to_device", component))

    def offload(self, component: str) -> None:
        """Bind ``component``'s views to the host's own tensors again (the device copies are dropped)."""
        for module, spec in self._modules(component):
            _rebind(module, spec, self._host_tensor)
        self.placed.discard(component)
        self.events.append(("offload", component))

    def restore(self) -> None:
        """Views back on the host's tensors, parked host tensors back in place, the host's placement
        restored. Safe to call more than once and after a failure half-way."""
        try:
            for component in COMPONENTS:
                if component in self.placed:
                    self.offload(component)
            self._unpark()
        finally:
            if self.host is not None:
                self.host.restore()

    @contextlib.contextmanager
    def lend(self) -> Iterator[None]:
        """Give the model back to the host for a while (sample images through ``Host.generate``),
        then place again what was placed."""
        placed = [c for c in COMPONENTS if c in self.placed]
        self.restore()
        try:
            yield
        finally:
            self.begin()
            for component in placed:
                self.to_device(component)

    # -- tensors --------------------------------------------------------------------------------
    def _host_tensor(self, key: str) -> torch.Tensor:
        return self.parameters[key].detach()

    def _device_tensor(self, key: str) -> torch.Tensor:
        host = self.parameters[key]
        dtype = torch.float8_e4m3fn if key in self.fp8_keys else None
        if dtype is None:
            return host.detach().to(self.device)
        if same_device(host.device, self.device):
            return self._park(key, host)
        return host.detach().to(device=self.device, dtype=dtype)

    def _park(self, key: str, host: Any) -> torch.Tensor:
        """fp8 copy of a host tensor that lives on the device; the host's own tensor moves to the CPU
        (on the CPU the backup is the original tensor itself, so nothing is copied or changed)."""
        original = host.data
        with torch.no_grad():
            low = original.to(dtype=torch.float8_e4m3fn)
            backup = original if original.device.type == "cpu" else original.to("cpu")
        self._parked[key] = (backup, original.device)
        host.data = backup
        return low

    def _unpark(self) -> None:
        while self._parked:
            key, (backup, device) = self._parked.popitem()
            self.parameters[key].data = backup.to(device)


def _rebind(module: torch.nn.Module, spec: Any, source: Any) -> None:
    """Point every parameter of a view module at ``source(checkpoint key)`` in the module's layout,
    and move the module's own buffers (``position_ids``) next to its weights, as the view builder does."""
    from .models.keys import module_view

    with torch.no_grad():
        for name, param in module.named_parameters():
            entry = spec.entry(name)
            param.data = module_view(entry, source(entry.source))
        first = next(module.parameters(), None)
        if first is None:
            return
        for owner in module.modules():
            for name, buffer in owner._buffers.items():
                if buffer is not None and buffer.device != first.device:
                    owner._buffers[name] = buffer.to(first.device)
