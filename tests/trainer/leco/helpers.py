"""Shared pieces of the LECO tests: the tiny host (built once per process) and small configs."""

from __future__ import annotations

from functools import cache
from typing import Any

import torch

from lora_bakery.trainer.leco import LecoConfig

TARGET, POSITIVE, NEGATIVE = "a dog", "a dog, red", "a dog, blue"


@cache
def tiny_host(arch: str = "sd15") -> Any:
    """A DiffusersHost on the tiny checkpoint, with its views built (shared by the tests; never changed)."""
    from lora_bakery.extension.host.diffusers_host import DiffusersHost
    from lora_bakery.trainer.tiny import tiny_checkpoint

    host = DiffusersHost(tiny_checkpoint(arch), device="cpu")
    host.views()
    return host


def config(out: Any, **overrides: Any) -> LecoConfig:
    """A few-step slider on 64 px latents, cross-attention only (fast), fp32, no previews."""
    data: dict[str, Any] = {
        "prompts": [{
            "target": TARGET, "positive": POSITIVE, "unconditional": NEGATIVE, "neutral": TARGET,
            "resolution": 64, "guidance_scale": 2.0,
        }],
        "network": {"modules": "xattn"},
        "training": {"steps": 20, "lr": 2e-2, "precision": "fp32", "max_denoising_steps": 4, "seed": 3},
        "saving": {"output_dir": str(out), "save_every": 0, "precision": "fp32"},
        "preview": {"enabled": False},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            data.setdefault(section, {}).update(values)
        else:
            data[section] = values
    return LecoConfig.from_dict(data)


def state_hash(parameters: dict[str, torch.Tensor]) -> int:
    """A cheap exact fingerprint of the host's weights (sum of per-tensor byte hashes)."""
    import hashlib

    digest = hashlib.sha256()
    for key in sorted(parameters):
        digest.update(key.encode())
        digest.update(parameters[key].detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return int(digest.hexdigest()[:16], 16)
