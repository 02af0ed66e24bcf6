"""Build diffusers/transformers modules around the host's own tensors: no second copy of the model.

Each module is created on the meta device (no weight memory), then every parameter slot is filled
with a frozen ``nn.Parameter`` that aliases the host tensor: the tensor itself, or a view where the
layouts differ (see :mod:`.keys`). Sharing is measured with ``untyped_storage().data_ptr()`` and
reported. The one exception is inference tensors (Forge loads weights under
``torch.inference_mode()``): they cannot be saved for backward, so they are copied once and the
report says so.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import torch

from .base import Component, ModelConfigs, ModelViews, ViewReport
from .detect import detect_architecture
from .families import family_for
from .keys import KeyEntry, module_view


def infer_configs(parameters: Mapping[str, torch.Tensor], architecture: str | None = None) -> ModelConfigs:
    """Diffusers/transformers configs for a checkpoint, from tensor shapes and the family's rules.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): checkpoint tensors by original key; only ``.shape``
            is read, so meta tensors are fine.
        architecture (`str`, *optional*): ``"sd1"`` or ``"sdxl"``; detected from the keys when omitted.

    Returns:
        `ModelConfigs`: U-Net, VAE and text encoder configs.

    Raises:
        ValueError: a tensor the shapes are read from is missing, or the shapes do not fit the family.
    """
    architecture = architecture or detect_architecture(parameters.keys())
    family = family_for(architecture)
    try:
        return family.infer_configs(parameters)
    except KeyError as error:
        raise ValueError(
            f"the checkpoint lacks {error.args[0]}, needed to read the {architecture} model's shape"
        ) from None


#: Serialises building modules on the meta device with everything else that constructs modules.
#: accelerate's ``init_empty_weights`` patches ``torch.nn.Module.register_parameter`` for the whole
#: process, not the thread: a module built in another thread meanwhile gets meta weights, and two
#: overlapping builds (accelerate 0.21) restore each other's patch and leave it on for good.
CONSTRUCTION_LOCK = threading.RLock()


def empty_module(component: Component) -> torch.nn.Module:
    """Build ``component`` with parameters on the meta device (buffers stay real: position_ids...).

    Args:
        component (`Component`): a family component.

    Returns:
        `torch.nn.Module`: the module, weights on ``meta`` (no memory), buffers on the CPU.
    """
    from accelerate import init_empty_weights

    with CONSTRUCTION_LOCK, init_empty_weights(include_buffers=False):
        return component.build()


class _Sources:
    """Hands out detached host tensors, copying inference tensors once (shared by q/k/v chunks)."""

    def __init__(self, parameters: Mapping[str, torch.Tensor], report: ViewReport) -> None:
        self.parameters = parameters
        self.report = report
        self.copies: dict[str, torch.Tensor] = {}

    def get(self, key: str) -> torch.Tensor:
        tensor = self.parameters[key]
        if not tensor.is_inference():
            return tensor.detach()
        if key not in self.copies:
            with torch.inference_mode(False):
                self.copies[key] = tensor.clone()
            self.report.copied.append(key)
            self.report.extra_bytes += tensor.numel() * tensor.element_size()
        return self.copies[key]


def _entries(components: list[tuple[Component, torch.nn.Module]]) -> list[tuple[torch.nn.Module, KeyEntry]]:
    return [
        (module, component.entry(name))
        for component, module in components
        for name, _ in module.named_parameters()
    ]


def _check_sources(
    entries: Iterable[tuple[torch.nn.Module, KeyEntry]], parameters: Mapping[str, torch.Tensor]
) -> None:
    missing = sorted({entry.source for _, entry in entries if entry.source not in parameters})
    if missing:
        raise ValueError(
            f"{len(missing)} weights the model needs are missing from the checkpoint, e.g. {', '.join(missing[:5])}"
        )


def _attach(module: torch.nn.Module, entry: KeyEntry, sources: _Sources) -> None:
    """Put a frozen Parameter aliasing the host tensor into ``module``'s slot for ``entry.target``."""
    owner_name, _, leaf = entry.target.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    expected = owner._parameters[leaf].shape
    view = module_view(entry, sources.get(entry.source))
    if view.shape != expected:
        raise ValueError(
            f"checkpoint tensor {entry.source} has shape {tuple(view.shape)} as {entry.target}, "
            f"but the inferred config needs {tuple(expected)}"
        )
    owner._parameters[leaf] = torch.nn.Parameter(view, requires_grad=False)


def _finish(module: torch.nn.Module, report: ViewReport, host_storages: set[int]) -> None:
    """Move buffers next to the weights, count sharing, freeze and switch to eval mode."""
    params = list(module.parameters())
    device = params[0].device if params else torch.device("cpu")
    for owner in module.modules():
        for name, buffer in owner._buffers.items():
            if buffer is None:
                continue
            if buffer.device != device:
                owner._buffers[name] = buffer = buffer.to(device)
            report.buffer_bytes += buffer.numel() * buffer.element_size()
    for param in params:
        report.total += 1
        report.shared += param.untyped_storage().data_ptr() in host_storages
    module.requires_grad_(False)
    module.eval()


def build_views(parameters: Mapping[str, torch.Tensor], architecture: str | None = None) -> ModelViews:
    """Diffusers U-Net/VAE and transformers CLIP modules whose weights ARE the host's tensors.

    Nothing is copied (except inference tensors, see the module docstring) and nothing is written to
    the host tensors: the views are frozen (``requires_grad=False``), in eval mode, in the host's dtype
    and on its device. Adapters (LoRA...) wrap their modules and train on top; gradients flow through
    the frozen base to the adapters.

    Args:
        parameters (`Mapping[str, torch.Tensor]`): the loaded weights by original checkpoint key
            (``model.diffusion_model.*``, ``first_stage_model.*``, ``cond_stage_model.*`` /
            ``conditioner.*``). Extra keys (``alphas_cumprod``, ``model_ema.*``...) are ignored.
        architecture (`str`, *optional*): ``"sd1"`` or ``"sdxl"``; detected from the keys when omitted.

    Returns:
        `ModelViews`: the modules, their configs and a :class:`ViewReport`.

    Raises:
        ValueError: unknown layout, missing weights or shapes that do not fit together.
        NotImplementedError: SD2 checkpoints.
    """
    with torch.inference_mode(
        False
    ):  # a caller inside inference mode (Forge) must still get autograd-able views
        return _build(parameters, architecture or detect_architecture(parameters.keys()))


def _build(parameters: Mapping[str, torch.Tensor], architecture: str) -> ModelViews:
    family = family_for(architecture)
    configs = infer_configs(parameters, architecture)
    report = ViewReport()
    built = [(component, empty_module(component)) for component in family.components(configs)]
    entries = _entries(built)
    _check_sources(entries, parameters)
    sources = _Sources(parameters, report)
    for module, entry in entries:
        _attach(module, entry, sources)
    host_storages = {t.untyped_storage().data_ptr() for t in parameters.values() if not t.is_meta}
    for _, module in built:
        _finish(module, report, host_storages)
    if report.copied:
        mib = sum(t.numel() * t.element_size() for t in sources.copies.values()) / 2**20
        report.messages.append(
            f"{len(report.copied)} of the model's tensors are inference tensors (loaded under "
            f"torch.inference_mode(), as Forge does) and cannot take part in autograd; "
            f"copied them once ({mib:.1f} MiB extra)."
        )
    modules = [module for _, module in built]
    return ModelViews(architecture, modules[0], modules[1], modules[2:], configs, report)
