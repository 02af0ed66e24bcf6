"""Fake ``modules.devices``: CPU only."""

import torch

device = cpu = torch.device("cpu")
dtype = dtype_vae = dtype_unet = torch.float32
gc_calls = 0


def torch_gc():
    global gc_calls
    gc_calls += 1
