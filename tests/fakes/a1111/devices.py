"""Fake ``modules.devices``: CPU only (``device`` may be pointed at a second device by a test, see
``tests/fakes/fake_gpu.py``; ``reset()`` puts it back)."""

import torch

device = cpu = torch.device("cpu")
dtype = dtype_vae = dtype_unet = torch.float32
gc_calls = 0


def torch_gc():
    global gc_calls
    gc_calls += 1


def reset():
    global device
    device = cpu
