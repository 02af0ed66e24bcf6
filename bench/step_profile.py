"""Where a trainer's step time goes: ``python bench/step_profile.py OUT.txt FIRST COUNT SCRIPT ARGS...``.

Runs SCRIPT as ``__main__`` (as ``bench/step_clock.py`` does) with ``torch.profiler`` switched on
from the end of optimizer step FIRST to the end of step FIRST + COUNT (global optimizer hooks, so
any trainer works unmodified), then writes the operators that took the most CPU time, with and
without their children, to OUT.txt. ``bench/vs_kohya.py --profile`` runs it for both sides.
"""

from __future__ import annotations

import os
import runpy
import sys
import time


def main() -> None:
    if len(sys.argv) < 5:
        raise SystemExit(__doc__.splitlines()[0])
    out, first, count, script, args = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5:]
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from torch.profiler import ProfilerActivity, profile

    state = {"steps": 0, "prof": None}

    def hook(optimizer, a, kw) -> None:
        state["steps"] += 1
        if state["steps"] == first:
            state["prof"] = profile(activities=[ProfilerActivity.CPU], record_shapes=False)
            state["prof"].__enter__()
            state["t0"] = time.perf_counter()
        elif state["steps"] == first + count and state["prof"] is not None:
            wall = time.perf_counter() - state["t0"]
            prof, state["prof"] = state["prof"], None
            prof.__exit__(None, None, None)
            averages = prof.key_averages()
            with open(out, "w") as f:
                # Wall time of the window next to the ops' time: a gap is time outside torch ops.
                f.write(f"{count} steps after step {first}: {wall:.2f} s wall\n")
                f.write(averages.table(sort_by="self_cpu_time_total", row_limit=25, max_name_column_width=70))
                f.write(averages.table(sort_by="cpu_time_total", row_limit=40, max_name_column_width=70))

    register_optimizer_step_post_hook(hook)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
