"""CUDA graphs for the U-Net's forward and backward: captured once per input shape, replayed every step.

Why: on a GPU a LoRA step launches ~11,000 kernels for SD1.5 and ~40,000 for SDXL (the U-Net, the
adapters on every attention and feed-forward layer, their backward). ``bench/gpu.py`` measured on an
H200 that the GPU computes for ~60 ms of a ~215 ms SD1.5 step at 512² batch 4: the rest is the CPU
issuing launches. A CUDA graph replays the whole recorded forward (and backward) with one launch.

What is graphed: only the U-Net call, through :func:`torch.cuda.make_graphed_callables`, with the
U-Net adapters' parameters as the graph's trainable inputs. Noise, text conditioning, the loss, its
weighting, clipping and the optimizer stay ordinary eager code, so every loss option keeps working.

Opt-in (``training.cuda_graphs``, off by default) until ``bench/gpu.py`` has checked it on a GPU: the
bench's ``sd15-b4`` / ``sd15-b4-eager`` rows compare the losses with and without graphs.

When (:func:`graph_blockers` says why not): a CUDA device, ``training.cuda_graphs`` on, no random
draw inside the U-Net (adapter dropout, rank/module dropout, DyLoRA's rank band), no gradient
accumulation (a graph hands back the same gradient buffers every replay) and no gradient
checkpointing. A shape is captured the second time it is seen, so one-off shapes such as an epoch's
last partial batch stay eager; at most :data:`MAX_GRAPHS` shapes, all in one memory pool (safe here
because every replay's outputs are used, and its backward run, before the next replay). Any error
while capturing switches the run back to eager steps, said once in the log.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

MAX_GRAPHS = 4
WARMUP_ITERS = 3


def graph_blockers(*, device: torch.device, enabled: bool, grad_accum: int, checkpointing: bool,
                   adapter_randomness: str | None) -> list[str]:
    """Why this run cannot replay CUDA graphs (empty: it can).

    Args:
        device (`torch.device`): where the U-Net runs.
        enabled (`bool`): ``training.cuda_graphs``.
        grad_accum (`int`): ``training.grad_accum``.
        checkpointing (`bool`): ``training.gradient_checkpointing``.
        adapter_randomness (`str`, *optional*): what draws random numbers inside the adapters, if anything.
    """
    reasons = []
    if not enabled:
        reasons.append("training.cuda_graphs is off")
    if device.type != "cuda":
        reasons.append(f"the model is on the {device.type}, not a CUDA GPU")
    elif not hasattr(torch.cuda, "make_graphed_callables"):
        reasons.append("this torch has no torch.cuda.make_graphed_callables")
    if grad_accum > 1:
        reasons.append("gradient accumulation (training.grad_accum > 1)")
    if checkpointing:
        reasons.append("gradient checkpointing (training.gradient_checkpointing)")
    if adapter_randomness:
        reasons.append(adapter_randomness)
    return reasons


class _UNetCall(nn.Module):
    """The U-Net call as a module whose only parameters are the trained adapter tensors.

    The host's frozen weights are not registered here: to the graph they are constants at fixed
    addresses, and ``make_graphed_callables`` replaces ``forward`` on this throwaway wrapper only,
    never on the host's modules.
    """

    def __init__(self, unet: nn.Module, trained: list[nn.Parameter]) -> None:
        super().__init__()
        self.trained = nn.ParameterList(trained)  # the same Parameter objects the optimizer steps
        self.__dict__["unet"] = unet

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                *added: torch.Tensor) -> torch.Tensor:
        kwargs = {"added_cond_kwargs": {"text_embeds": added[0], "time_ids": added[1]}} if added else {}
        return self.unet(noisy, timesteps, context, **kwargs).sample


class GraphedUNet:
    """Replays the U-Net's forward/backward as CUDA graphs, one per input shape; ``None`` = run it eagerly.

    Args:
        unet (`nn.Module`): the U-Net view with the adapters applied.
        trained (`list[nn.Parameter]`): the U-Net adapters' parameters (their gradients come from the graph).
        autocast_dtype (`torch.dtype`, *optional*): the run's autocast dtype (captured into the graph).
        note (`Callable[[str], None]`): the run's log.
    """

    def __init__(self, unet: nn.Module, trained: list[nn.Parameter], autocast_dtype: torch.dtype | None,
                 note: Callable[[str], None]) -> None:
        self.unet = unet
        self.trained = trained
        self.autocast_dtype = autocast_dtype
        self.note = note
        self.graphs: dict[tuple, Callable[..., torch.Tensor]] = {}
        self.seen: Counter[tuple] = Counter()
        self.enabled = True
        self.pool: Any = None
        self.replays = 0

    def __call__(self, noisy: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor,
                 added: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
        args = (noisy, timesteps, context) + ((added["text_embeds"], added["time_ids"]) if added else ())
        key = tuple((tuple(a.shape), a.dtype, a.requires_grad) for a in args)
        graphed = self.graphs.get(key)
        if graphed is None:
            self.seen[key] += 1
            if not self.enabled or self.seen[key] < 2 or len(self.graphs) >= MAX_GRAPHS:
                return None
            graphed = self._capture(key, args)
            if graphed is None:
                return None
        self.replays += 1
        return graphed(*args)

    def _capture(self, key: tuple, args: tuple[torch.Tensor, ...]) -> Callable[..., torch.Tensor] | None:
        module = _UNetCall(self.unet, self.trained).train()
        samples = tuple(a.detach().clone().requires_grad_(a.requires_grad) for a in args)
        options: dict[str, Any] = {"num_warmup_iters": WARMUP_ITERS}
        accepted = inspect.signature(torch.cuda.make_graphed_callables).parameters
        if "allow_unused_input" in accepted:
            options["allow_unused_input"] = True
        if "pool" in accepted:
            if self.pool is None:
                self.pool = torch.cuda.graph_pool_handle()
            options["pool"] = self.pool
        elif self.graphs:  # without a shared pool every shape would hold its own activations
            return None
        autocast = (torch.autocast("cuda", dtype=self.autocast_dtype, cache_enabled=False)
                    if self.autocast_dtype is not None else torch.autocast("cuda", enabled=False))
        try:
            with autocast:
                graphed = torch.cuda.make_graphed_callables(module, samples, **options)
        except Exception as exc:  # a capture that fails must never stop training: eager from here on
            self.enabled = False
            self.graphs.clear()
            self.note(f"CUDA graphs off for the rest of this run, steps run normally ({type(exc).__name__}: {exc})")
            return None
        self.graphs[key] = graphed
        shape = "×".join(str(n) for n in args[0].shape)
        self.note(f"CUDA graph captured for latents {shape} ({len(self.graphs)}/{MAX_GRAPHS})")
        return graphed

    def close(self) -> None:
        """Drop the graphs and their memory pool (the run frees the cache afterwards)."""
        self.graphs.clear()
        self.pool = None
