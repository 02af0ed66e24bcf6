"""Data-parallel training across processes (``accelerate launch``): shard batches, average gradients.

The adapters are not called through a wrapper's ``forward`` (they patch the host's layers), so a
DDP wrapper would never arm its gradient hooks; kohya hits the same and all-reduces the network's
gradients by hand (``all_reduce_network``). Here too: every process computes its batches'
gradients, :meth:`Distributed.average_gradients` averages them before each optimizer step, and only
the main process writes files. Works over any initialised ``torch.distributed`` group (gloo on CPU,
NCCL on GPUs); with no group it is a single process and every call is a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import torch

T = TypeVar("T")


class Distributed:
    """This process's place in the group."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self.active = dist.is_available() and dist.is_initialized()
        self.world = dist.get_world_size() if self.active else 1
        self.rank = dist.get_rank() if self.active else 0
        self._dist = dist

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batches: Sequence[T]) -> list[T]:
        """This process's share of an epoch's batches; every process gets the same count (the
        shortest shares wrap around), so all of them take the same number of optimizer steps."""
        if self.world == 1:
            return list(batches)
        per = -(-len(batches) // self.world)
        return [batches[(self.rank + i * self.world) % len(batches)] for i in range(per)]

    def batches_per_epoch(self, total: int) -> int:
        return total if self.world == 1 else -(-total // self.world)

    def average_gradients(self, params: Iterable[torch.nn.Parameter]) -> None:
        """Mean of every gradient over the processes (one flat all-reduce)."""
        if self.world == 1:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        self._dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset : offset + n].view_as(g))
            offset += n

    def mean(self, value: float, device: Any) -> float:
        """Mean of a number over the processes (the logged loss, the NaN check)."""
        if self.world == 1:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        self._dist.all_reduce(t)
        return float(t.item()) / self.world

    def any(self, flag: bool, device: Any) -> bool:
        """True on every process when it is true on any (interrupt requests)."""
        if self.world == 1:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=device)
        self._dist.all_reduce(t)
        return bool(t.item() > 0)

    def barrier(self) -> None:
        if self.world > 1:
            self._dist.barrier()
