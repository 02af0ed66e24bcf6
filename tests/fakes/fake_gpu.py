"""A second device for placement tests on a machine without one, and a record of where tensors are.

Choice: with CUDA present the tests use it, and ``where()`` reads ``tensor.device``. Without it the
"GPU" is ``torch.device("cpu", 1)``: torch treats it as another device in ``.to()`` (every move to
it copies, so a stale view or a leftover copy is a different storage, as on a real GPU) but tensors
still report ``cpu`` and compute normally. :class:`DeviceLedger` (a ``TorchFunctionMode``) then
records, per storage, the device of the ``.to()`` that produced it, so a test can ask where each
module's tensors are before, during and after a bake, and makes ``.to("cpu")`` of a "GPU" tensor a
copy, as a real transfer is. Storages no ``.to()`` touched are on the CPU. Limit: the code under
test sees ``tensor.device == cpu`` for "GPU" tensors, so its checks "is this already on the
device?" answer no; the branches taken when they answer yes run only where CUDA exists. Nothing
here is used by the code under test.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

FAKE_GPU = torch.device("cpu", 1)


def gpu_device() -> torch.device:
    """The test "GPU": CUDA when present, else ``cpu:1``."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else FAKE_GPU


def _target(args: tuple, kwargs: dict) -> Any:
    """The device a ``Tensor.to`` call asks for (``None``: dtype only)."""
    if "device" in kwargs and kwargs["device"] is not None:
        return torch.device(kwargs["device"])
    for arg in args[1:]:
        if isinstance(arg, (torch.device, str)):
            return torch.device(arg)
        if isinstance(arg, torch.Tensor):
            return arg
    return None


class DeviceLedger(TorchFunctionMode):
    """Where every storage moved by ``.to()`` is: ``"gpu"`` or ``"cpu"``."""

    def __init__(self, gpu: torch.device = FAKE_GPU) -> None:
        super().__init__()
        self.gpu = gpu
        self.tags: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func not in (torch.Tensor.to, torch.Tensor.cpu, torch.Tensor.cuda) or not isinstance(out, torch.Tensor):
            return out
        source = args[0]
        if func is torch.Tensor.cpu:
            tag = "cpu"
        elif func is torch.Tensor.cuda:
            tag = "gpu"
        else:
            target = _target(args, kwargs)
            if isinstance(target, torch.Tensor):
                tag = self.where(target)
            elif target is None:
                tag = self.where(source)
            else:
                tag = "gpu" if target == self.gpu else "cpu"
        if out is source and tag != self.where(source):
            out = out.clone()  # torch saw no move (both are "cpu"); a real transfer makes a copy
        self.tags[out.untyped_storage()] = tag
        return out

    def where(self, tensor: torch.Tensor) -> str:
        """``"gpu"`` or ``"cpu"`` for a tensor."""
        if tensor.device.type == "cuda":
            return "gpu"
        return self.tags.get(tensor.untyped_storage(), "cpu")


class CudaLedger:
    """The same question answered by CUDA itself (no mode needed)."""

    def __enter__(self) -> CudaLedger:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    @staticmethod
    def where(tensor: torch.Tensor) -> str:
        return "gpu" if tensor.device.type == "cuda" else "cpu"


def ledger() -> Any:
    """A :class:`DeviceLedger` on the CPU, a :class:`CudaLedger` with CUDA."""
    return CudaLedger() if torch.cuda.is_available() else DeviceLedger()
