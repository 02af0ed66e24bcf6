"""Demo stages of the foundation: generate with the tiny model through the Host."""

from __future__ import annotations

from typing import Any

from lora_bakery.extension.host.base import GenerationRequest


def generate(ctx: Any) -> dict[str, Any]:
    """Generate one image through ``Host.generate`` on zero-copy views, and report the sharing."""
    folder = ctx.stage_dir("generate")
    views = ctx.host.views()
    images = ctx.host.generate([GenerationRequest(prompt="a photo of a cat", seed=1234, width=64, height=64, steps=4)])
    outputs = []
    for i, img in enumerate(images):
        path = folder / f"{i:03d}-{img.seed}.png"
        img.image.save(path)
        outputs.append(path)
    report = views.report
    return {
        "outputs": outputs,
        "architecture": ctx.host.model().architecture,
        "images": len(images),
        "shared_parameters": f"{report.shared}/{report.total}",
        "extra_bytes": report.extra_bytes,
    }
