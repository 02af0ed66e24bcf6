"""Preview grids at each save and the "done" hint (the guide: "if the extremes have stopped changing
then it is overcooked"; the earlier save is the one to keep).

A *previewer* is the caller's ``previewer(request: PreviewRequest, lora_file: Path | None) -> PIL.Image``.
The usual one renders through ``Host.generate`` with the saved file as a LoRA at
``request.multiplier``, so the grid shows what the host's own LoRA loader makes of it. A previewer
with ``uses_training_views = True`` (the standalone host, which generates from the training views)
is called with the slider in place, its multiplier already set to ``request.multiplier``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Mean absolute pixel change (0..1) of both extremes below which the slider is called done.
DONE_THRESHOLD = 0.02


@dataclass
class PreviewRequest:
    """One preview image. The fields other than ``multiplier`` equal ``GenerationRequest``'s."""

    prompt: str
    negative_prompt: str
    seed: int
    width: int
    height: int
    steps: int
    cfg_scale: float
    multiplier: float

    def generation_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``GenerationRequest`` (everything but ``multiplier``)."""
        return {
            "prompt": self.prompt, "negative_prompt": self.negative_prompt, "seed": self.seed,
            "width": self.width, "height": self.height, "steps": self.steps, "cfg_scale": self.cfg_scale,
        }


def image_difference(a: Any, b: Any) -> float:
    """Mean absolute difference of two images, 0 (same) .. 1 (black vs white), at ``a``'s size.

    Args:
        a (`PIL.Image.Image`): one image.
        b (`PIL.Image.Image`): the other (resized to ``a``'s size when they differ).

    Returns:
        `float`
    """
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.float32)
    if b.size != a.size:
        b = b.resize(a.size)
    y = np.asarray(b.convert("RGB"), dtype=np.float32)
    return float(np.abs(x - y).mean() / 255.0)


def extremes_change(previous: Sequence[Any], current: Sequence[Any]) -> float | None:
    """The larger difference of the first and the last image (the two extreme weights) between two saves."""
    if not previous or not current or len(previous) != len(current):
        return None
    return max(image_difference(current[0], previous[0]), image_difference(current[-1], previous[-1]))


def done_hint(step: int, previous_step: int, change: float | None, threshold: float = DONE_THRESHOLD) -> str | None:
    """A sentence for the log when the extremes stopped changing between two saves, else ``None``."""
    if change is None or change >= threshold:
        return None
    return (
        f"The extreme weights changed by only {change:.1%} between steps {previous_step} and {step}: the "
        f"slider has probably stopped learning (overcooking from here). Compare the saves; the one from "
        f"step {previous_step} is likely the one to keep."
    )


def make_grid(images: Sequence[Any], labels: Sequence[str]) -> Any:
    """One row of images with a label strip under each (e.g. the weights ``-2`` .. ``2``).

    Args:
        images (`Sequence[PIL.Image.Image]`): same-size images.
        labels (`Sequence[str]`): one label per image.

    Returns:
        `PIL.Image.Image`
    """
    from PIL import Image, ImageDraw

    if not images:
        raise ValueError("no images for the grid")
    w, h = images[0].size
    strip = 14
    grid = Image.new("RGB", (w * len(images), h + strip), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, label) in enumerate(zip(images, labels)):
        grid.paste(image.convert("RGB").resize((w, h)), (i * w, 0))
        draw.text((i * w + 3, h + 1), label, fill="black")
    return grid


def weight_label(multiplier: float) -> str:
    """``-2``, ``-0.5``, ``+1`` for the grid."""
    text = f"{multiplier:+g}"
    return "0" if multiplier == 0 else text


__all__ = [
    "DONE_THRESHOLD",
    "PreviewRequest",
    "done_hint",
    "extremes_change",
    "image_difference",
    "make_grid",
    "weight_label",
]
