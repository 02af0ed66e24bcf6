"""Measure the memory of one real training step, on any device: the ground truth for
:mod:`.memory_estimate` (its coefficients were fitted to these numbers, and its tests compare).

On the CPU torch keeps no allocator statistics, so :class:`LiveTensorBytes` counts storages itself:
a ``TorchDispatchMode`` sees every tensor an operator allocates (outputs sharing an input's storage
are views or in-place results and are skipped), and a ``weakref.finalize`` on each storage takes its
bytes off again when it is freed. Activations saved for backward, gradients and temporaries are all
counted, exactly; weights that existed before are not. On CUDA ``torch.cuda.max_memory_allocated``
says the same of the whole device (:func:`cuda_peak`).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def _tensors(args: tuple, kwargs: dict | None) -> list[torch.Tensor]:
    found = []
    for value in (*args, *(kwargs or {}).values()):
        if isinstance(value, torch.Tensor):
            if value.device.type != "meta":
                found.append(value)
        elif isinstance(value, (list, tuple)):
            found.extend(v for v in value if isinstance(v, torch.Tensor) and v.device.type != "meta")
    return found


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of tensor storages allocated inside the mode and still alive (``live``), and the most at once (``peak``)."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._tracked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes

    def reset_peak(self) -> None:
        self.peak = self.live

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        outputs = [out] if isinstance(out, torch.Tensor) else [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if not outputs:
            return out
        inputs = {id(a.untyped_storage()) for a in _tensors(args, kwargs)}
        for tensor in outputs:
            if tensor.device.type == "meta":
                continue
            storage = tensor.untyped_storage()
            if id(storage) in inputs or storage in self._tracked:
                continue
            nbytes = storage.nbytes()
            self._tracked[storage] = nbytes
            weakref.finalize(storage, self._free, nbytes)
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        return out


@dataclass
class StepMeasurement:
    """Bytes of one training step after the first (the optimizer state exists by then).

    Attributes:
        transient (`int`): peak of what the step allocates and frees again: activations saved for
            backward, their gradients, weight gradients, temporaries.
        optimizer (`int`): optimizer state (allocated by the first step, kept).
        adapters (`int`): the adapters' own weights.
        weights (`int`): the views' weights (what must be on the device).
        trained_parameters (`int`): adapter parameters that train.
    """

    transient: int
    optimizer: int
    adapters: int
    weights: int
    trained_parameters: int

    @property
    def total(self) -> int:
        return self.transient + self.optimizer + self.adapters + self.weights


def measure_training_step(views: Any, *, resolution: int, batch: int = 1, gradient_checkpointing: bool = False,
                          autocast_dtype: torch.dtype | None = None, network_dim: int = 16,
                          optimizer: str = "adamw", train_text_encoder: bool = False, seed: int = 0) -> StepMeasurement:
    """One LoRA training step on the views, as the loop does it, with live bytes counted.

    Text-encoder outputs are random here (cached outputs, the usual case) unless ``train_text_encoder``.

    Args:
        views (`ModelViews`): the model (its device is used).
        resolution (`int`): square image side in pixels.
        batch (`int`): images per step.
        gradient_checkpointing (`bool`): checkpoint the U-Net (and a trained text encoder).
        autocast_dtype (`torch.dtype`, *optional*): ``None`` = fp32.
        network_dim (`int`): LoRA rank.
        optimizer (`str`): a ``optimizer.type`` name.
        train_text_encoder (`bool`): also adapt and train the text encoders.
        seed (`int`): random inputs' seed.
    """
    from .adapters import create_network, make_options
    from .loop.setup import HostState, prepare_modules
    from .optim import build_optimizer

    device = next(views.unet.parameters()).device
    torch.manual_seed(seed)
    network = create_network(views, "lora", make_options("lora", dim=network_dim, alpha=network_dim / 2),
                             train_unet=True, train_text_encoder=train_text_encoder)
    groups = network.trainable_parameters(1e-4, 1e-4 if train_text_encoder else 0.0)
    params = [p for g in groups for p in g["params"]]
    opt = build_optimizer(optimizer, groups, 1e-4, [])
    host = HostState()
    prepare_modules(views, host, train_text_encoder, gradient_checkpointing)
    network.apply()
    cfg = dict(views.unet.config)
    latent = resolution // 8
    sdxl = views.architecture == "sdxl"

    def step() -> None:
        x = torch.randn(batch, cfg["in_channels"], latent, latent, device=device)
        t = torch.randint(0, 1000, (batch,), device=device)
        autocast = (torch.autocast(device_type=device.type, dtype=autocast_dtype) if autocast_dtype is not None
                    else torch.autocast(device_type=device.type, enabled=False))
        with autocast:
            if train_text_encoder:
                ids = torch.randint(0, 49407, (batch, 77), device=device)
                outs = [te(ids, output_hidden_states=True) for te in views.text_encoders]
                context = torch.cat([o.hidden_states[-2] if sdxl else o.last_hidden_state for o in outs], dim=-1)
                pooled = outs[-1].text_embeds if sdxl else None
            else:
                context = torch.randn(batch, 77, cfg["cross_attention_dim"], device=device)
                width = cfg.get("projection_class_embeddings_input_dim") or 0
                pooled = torch.randn(batch, width - 6 * (cfg.get("addition_time_embed_dim") or 0), device=device) if sdxl else None
            added = {"text_embeds": pooled, "time_ids": torch.zeros(batch, 6, device=device)} if sdxl else None
            pred = views.unet(x, t, context, added_cond_kwargs=added).sample
        loss = torch.nn.functional.mse_loss(pred.float(), torch.randn_like(pred, dtype=torch.float32))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    try:
        with LiveTensorBytes() as first:
            step()
        with LiveTensorBytes() as probe:
            step()
        weights = sum(p.numel() * p.element_size() for m in [views.unet, *(views.text_encoders if train_text_encoder else [])]
                      for p in m.parameters())
        adapters = sum(p.numel() * p.element_size() for p in network.parameters())
        return StepMeasurement(probe.peak, first.live, adapters, weights, sum(p.numel() for p in params))
    finally:
        network.remove()
        host.restore({})


def cuda_peak(device: Any = None) -> int:
    """``torch.cuda.max_memory_allocated`` (bytes) for comparing an estimate on a GPU."""
    return int(torch.cuda.max_memory_allocated(device))
