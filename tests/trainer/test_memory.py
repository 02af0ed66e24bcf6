"""Out-of-memory errors are recognised on every device, including a real CPU allocator failure."""

from __future__ import annotations

import pytest
import torch

from lora_bakery.extension.job import error_message
from lora_bakery.trainer.memory import is_out_of_memory


def _real_cpu_allocator_failure() -> RuntimeError:
    try:
        torch.empty(2**47, dtype=torch.uint8)  # 128 TiB: the allocator refuses at once (nothing is touched)
    except RuntimeError as exc:
        return exc
    pytest.skip("this machine allocated 128 TiB")


def test_a_real_cpu_allocation_failure_is_out_of_memory():
    exc = _real_cpu_allocator_failure()
    assert "allocate" in str(exc).lower() and is_out_of_memory(exc)
    message = error_message(exc)
    assert message.startswith("Out of memory") and "smaller batch size" in message and "\n" not in message


@pytest.mark.parametrize("text", ["CUDA out of memory. Tried to allocate 2.00 GiB", "HIP out of memory",
                                  "MPS backend out of memory (MPS allocated: 8.00 GB)"])
def test_gpu_backends_messages(text):
    assert is_out_of_memory(RuntimeError(text))


def test_other_errors_are_not():
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # only allocator RuntimeErrors carry it
    assert is_out_of_memory(MemoryError())
    oom = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom is not None:
        assert is_out_of_memory(oom("x"))
