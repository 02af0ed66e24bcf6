"""Telling an out-of-memory error from other failures, on every device torch runs on.

CUDA raises ``torch.cuda.OutOfMemoryError`` ("CUDA out of memory"), ROCm "HIP out of memory", Apple
"MPS backend out of memory", and the CPU allocator a plain ``RuntimeError`` that says
"DefaultCPUAllocator: can't allocate memory". All of them deserve the same advice instead of a
traceback. Torch-free on purpose: the job runner uses it without importing torch.
"""

from __future__ import annotations

#: Lower-case phrases of allocator failures (CUDA/HIP/MPS say "out of memory", the CPU allocator "can't
#: allocate memory"; "cannot allocate memory" is the errno 12 text).
OOM_PHRASES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for Python's ``MemoryError``, torch's ``OutOfMemoryError`` and allocator ``RuntimeError``s."""
    if isinstance(exc, MemoryError):
        return True
    if any(cls.__name__ == "OutOfMemoryError" for cls in type(exc).__mro__):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(phrase in text for phrase in OOM_PHRASES)
