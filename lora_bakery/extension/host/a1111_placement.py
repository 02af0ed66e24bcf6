"""The host side of a bake under A1111 ``--medvram`` / ``--medvram-sdxl`` / ``--lowvram``.

``modules/lowvram.py`` (1.10) keeps the VAE, the text model and the U-Net (with ``--lowvram``: each
U-Net block) on the CPU and moves one at a time to ``devices.device`` from forward pre-hooks,
remembering it in ``lowvram.module_in_gpu``; the rest of ``sd_model`` stays on the device. The
trainer never moves these modules itself: its views get device copies
(``lora_bakery.trainer.placement``). This class only

- frees the device before the bake with A1111's own ``lowvram.send_everything_to_cpu()``, after
  recording every parameter and buffer of ``sd_model`` and which module was on the GPU;
- puts everything back exactly afterwards: every tensor gets its very storage back
  (``param.data = original``: no copy, same pointer and device, also after a sample generation
  moved things about; the weights are frozen, so the values are the ones it had), replaced
  ``Parameter`` objects are put back, and the module that was on the GPU goes back there the way
  lowvram's hook sends it (``module.to(devices.device)``: same values, new allocation) and is
  ``module_in_gpu`` again. Hooks are never added or removed.

Which tensors are "on the GPU" is read from A1111's own bookkeeping (``module_in_gpu``), not from
``tensor.device``, so the rule holds whatever the device is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class _Slot:
    """One parameter or buffer of the host model as it was on entry."""

    owner: torch.nn.Module
    name: str
    is_param: bool
    obj: torch.Tensor  # the Parameter object (for buffers: the buffer tensor)
    original: torch.Tensor | None  # its storage on entry; None for the module that was on the GPU

    def reattach(self) -> None:
        """The very storage (and Parameter object) it had on entry."""
        if self.is_param:
            self.owner._parameters[self.name] = self.obj
            if self.original is not None:
                self.obj.data = self.original
        elif self.original is not None:
            self.owner._buffers[self.name] = self.original


def _slots(sd_model: torch.nn.Module, on_gpu: Any) -> list[_Slot]:
    moving = {id(m) for m in on_gpu.modules()} if on_gpu is not None else set()
    slots = []
    for owner in sd_model.modules():
        for table, is_param in ((owner._parameters, True), (owner._buffers, False)):
            for name, tensor in table.items():
                if tensor is None:
                    continue
                original = None if id(owner) in moving else (tensor.data if is_param else tensor)
                slots.append(_Slot(owner, name, is_param, tensor, original))
    return slots


class A1111Placement:
    """``HostPlacement`` for an A1111 model set up by ``modules/lowvram.py``.

    Args:
        sd_model (`torch.nn.Module`): ``shared.sd_model`` (with ``lowvram`` True).
    """

    def __init__(self, sd_model: Any) -> None:
        from modules import devices, shared

        self.sd_model = sd_model
        self.device = torch.device(devices.device)
        opts = shared.cmd_opts
        if getattr(opts, "lowvram", False):
            self.description = "--lowvram"
        elif getattr(opts, "medvram", False) or not getattr(opts, "medvram_sdxl", False):
            self.description = "--medvram"
        else:
            self.description = "--medvram-sdxl"
        self._slots: list[_Slot] | None = None
        self._module_in_gpu: Any = None

    def release(self) -> None:
        """Record the entry placement (first call), then send the webui's module on the GPU to the CPU."""
        from modules import devices, lowvram

        if self._slots is None:
            self._module_in_gpu = lowvram.module_in_gpu
            self._slots = _slots(self.sd_model, self._module_in_gpu)
        lowvram.send_everything_to_cpu()
        for slot in self._slots:  # after a sample generation: drop the copies its moves made
            slot.reattach()
        devices.torch_gc()

    def restore(self) -> None:
        """Every parameter and buffer as on entry, and ``lowvram.module_in_gpu`` as it was."""
        from modules import devices, lowvram

        if self._slots is None:
            return
        lowvram.send_everything_to_cpu()
        for slot in self._slots:
            slot.reattach()
        if self._module_in_gpu is not None:
            self._module_in_gpu.to(devices.device)
        lowvram.module_in_gpu = self._module_in_gpu


__all__ = ["A1111Placement"]
