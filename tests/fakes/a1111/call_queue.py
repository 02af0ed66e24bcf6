"""``modules/call_queue.py`` of A1111 1.10.1, minus the memory monitor: the queue lock and the gradio wrappers."""

import html
import time
from functools import wraps

from . import devices, errors, fifo_lock, progress, shared

queue_lock = fifo_lock.FIFOLock()


def wrap_queued_call(func):
    @wraps(func)
    def _func(*args, **kwargs):
        with queue_lock:
            res = func(*args, **kwargs)
        return res

    return _func


def wrap_gradio_gpu_call(func, extra_outputs=None):
    @wraps(func)
    def _func(*args, **kwargs):
        # if the first argument is a string that says "task(...)", it is treated as a job id
        if args and isinstance(args[0], str) and args[0].startswith("task(") and args[0].endswith(")"):
            id_task = args[0]
            progress.add_task_to_queue(id_task)
        else:
            id_task = None

        with queue_lock:
            shared.state.begin(job=id_task)
            progress.start_task(id_task)
            try:
                res = func(*args, **kwargs)
                progress.record_results(id_task, res)
            finally:
                progress.finish_task(id_task)
            shared.state.end()

        return res

    return wrap_gradio_call(_func, extra_outputs=extra_outputs, add_stats=True)


def wrap_gradio_call(func, extra_outputs=None, add_stats=False):
    @wraps(func)
    def _func(*args, extra_outputs_array=extra_outputs, **kwargs):
        t = time.perf_counter()
        try:
            res = list(func(*args, **kwargs))
        except Exception as e:
            errors.report(f"Error completing request\nArguments: {args} {kwargs}", exc_info=True)
            shared.state.job = ""
            shared.state.job_count = 0
            if extra_outputs_array is None:
                extra_outputs_array = [None, ""]
            error_message = f"{type(e).__name__}: {e}"
            res = extra_outputs_array + [f"<div class='error'>{html.escape(error_message)}</div>"]

        devices.torch_gc()
        shared.state.skipped = False
        shared.state.interrupted = False
        shared.state.stopping_generation = False
        shared.state.job_count = 0

        if not add_stats:
            return tuple(res)
        elapsed = time.perf_counter() - t
        res[-1] += f"<div class='performance'><p class='time'>Time taken: <wbr><span class='measurement'>{elapsed:.1f} sec.</span></p></div>"
        return tuple(res)

    return _func


def reset():
    global queue_lock
    queue_lock = fifo_lock.FIFOLock()
