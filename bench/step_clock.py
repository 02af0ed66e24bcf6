"""One clock for every trainer a benchmark compares: a timestamp at each optimizer step.

Ours, a bare diffusers+peft loop and kohya's scripts all end a step in ``optimizer.step()``, so a
global post-step hook (``torch.optim.optimizer.register_optimizer_step_post_hook``, public torch
API) times each of them the same way without touching their code. On CUDA the hook synchronises
before reading the clock, so a step's time is its GPU work, not only the launches; kohya and our
loop read the loss with ``.item()`` every step anyway, so this costs them nothing they did not pay.

Memory: peak allocated CUDA memory before the first step (loading, caching) and during training
(reset at the first step), and peak RSS (``VmHWM``) for CPU runs.

Two ways to use it:

* in-process: ``clock = StepClock.install()`` … ``clock.summary(warmup=3)``;
* around a script: ``python bench/step_clock.py OUT.json SCRIPT.py ARGS…`` runs SCRIPT as
  ``__main__`` (as ``python SCRIPT.py ARGS…`` would) and writes the summary to OUT.json at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any


def rss_peak_bytes() -> int:
    """Peak resident memory of this process (``VmHWM``: unlike ``ru_maxrss`` not inherited across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def step_stats(stamps: list[float], warmup: int) -> dict[str, float]:
    """Median, mean and spread of the gaps between consecutive step timestamps after ``warmup`` steps.

    The first steps pay for autotuning, lazy allocations and caches, so they are left out; with
    fewer than two steps left nothing can be said and every value is ``nan``.
    """
    gaps = [b - a for a, b in zip(stamps, stamps[1:])][max(0, warmup - 1):]
    if not gaps:
        return {"median": float("nan"), "mean": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(gaps), "mean": statistics.fmean(gaps), "min": min(gaps), "max": max(gaps),
            "n": len(gaps)}


@dataclass
class StepClock:
    """Timestamps of every optimizer step in this process, with memory peaks around them."""

    stamps: list[float] = field(default_factory=list)
    setup_peak: int = 0
    first_step_wall: float | None = None
    _cuda: bool = False
    _handle: Any = None

    @classmethod
    def install(cls) -> StepClock:
        import torch
        from torch.optim.optimizer import register_optimizer_step_post_hook

        clock = cls(_cuda=torch.cuda.is_available())
        if clock._cuda:  # peaks from here on; what is already allocated (the host's weights) stays counted
            torch.cuda.reset_peak_memory_stats()
        clock._handle = register_optimizer_step_post_hook(clock._hook)
        return clock

    def remove(self) -> None:
        """Stop timing (another clock can be installed for the next run in this process)."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, optimizer: Any, args: Any, kwargs: Any) -> None:
        import torch

        if self._cuda:
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        if len(self.stamps) == 1:
            self.first_step_wall = time.time()  # the parent subtracts its own spawn time: launch to first step
            if self._cuda:
                self.setup_peak = torch.cuda.max_memory_allocated()
                torch.cuda.reset_peak_memory_stats()

    def summary(self, warmup: int = 3) -> dict[str, Any]:
        """Step statistics and memory, JSON-ready."""
        import torch

        out: dict[str, Any] = {"steps": len(self.stamps), "step": step_stats(self.stamps, warmup),
                               "rss_peak": rss_peak_bytes(), "first_step_wall": self.first_step_wall}
        if self._cuda:
            torch.cuda.synchronize()
            out["vram_train_peak"] = torch.cuda.max_memory_allocated()
            out["vram_setup_peak"] = self.setup_peak
            out["vram_reserved_peak"] = torch.cuda.max_memory_reserved()
        return out


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit("usage: python bench/step_clock.py OUT.json SCRIPT.py [ARGS...]")
    out, script, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    warmup = int(os.environ.get("STEP_CLOCK_WARMUP", "3"))
    clock = StepClock.install()

    def dump() -> None:
        with open(out, "w") as f:
            json.dump(clock.summary(warmup), f)

    atexit.register(dump)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
