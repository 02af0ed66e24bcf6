"""Image-space block analyzer (lbw's "Effective Block Analyzer"): lower one block at a time, measure.

For each block, one image with that block at ``low`` and every other at ``high`` is compared with
the reference (all blocks at ``high``): the share of pixel-channels whose absolute difference
exceeds ``threshold`` (lbw's ``effectivechecker``: ``cv2.absdiff`` + threshold 20), shown as a bar
chart and as rows of diff | modified | reference images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lora_bakery.extension.host.base import GenerationRequest, LoraSpec, NullProgress, Progress
from lora_bakery.extension.host.lora_blocks import BLOCKID20, BLOCKID26

from .files import save_png_atomic


@dataclass
class BlockEffect:
    """Result of :func:`block_effects`: percent of changed pixel-channels per block, and the files."""

    blocks: list[str]
    percents: list[float]
    chart: Path | None
    sheet: Path | None


def changed_percent(a: Any, b: Any, threshold: int = 20) -> float:
    """Percent of pixel-channels whose absolute difference is above ``threshold`` (0–255)."""
    import numpy as np

    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    return float((np.abs(x - y) > threshold).mean() * 100.0)


def diff_image(a: Any, b: Any) -> Any:
    """The absolute difference, brightened so small changes show."""
    import numpy as np
    from PIL import Image

    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    return Image.fromarray(np.clip(np.abs(x - y) * 4, 0, 255).astype(np.uint8))


def block_effects(
    host: Any,
    lora: str,
    request: GenerationRequest,
    out_dir: str | Path,
    blocks: Sequence[str] | None = None,
    low: float = 0.0,
    high: float = 1.0,
    threshold: int = 20,
    progress: Progress | None = None,
) -> BlockEffect:
    """Render the reference and one image per lowered block; write ``effect.png`` and ``effect-sheet.png``.

    Args:
        host (`Host`): the generating host.
        lora (`str`): the LoRA file.
        request (`GenerationRequest`): prompt and settings (its ``loras`` are replaced; seed must be fixed).
        out_dir (`str | Path`): output folder.
        blocks (`Sequence[str]`, *optional*): block ids to test; every U-Net block of the family by default.
        low (`float`, defaults to 0.0): ratio of the lowered block.
        high (`float`, defaults to 1.0): ratio of every other block.
        threshold (`int`, defaults to 20): pixel difference that counts as changed.
        progress (`Progress`, *optional*): one step per image.

    Returns:
        `BlockEffect`.
    """
    import dataclasses

    from .draw import labelled_grid

    progress = progress or NullProgress()
    if request.seed < 0:
        raise ValueError("the block analyzer needs a fixed seed")
    arch = host.model().architecture
    family = BLOCKID20 if arch == "sdxl" else BLOCKID26
    chosen = list(blocks) if blocks else [b for b in family if b != "BASE"]

    def vector(lowered: str | None) -> list[float]:
        return [low if b == lowered else high for b in BLOCKID26]

    def render(lowered: str | None) -> Any:
        req = dataclasses.replace(request, batch_size=1,
                                  loras=[LoraSpec(lora, te=1.0, block_weights=vector(lowered))])
        (image,) = host.generate([req], None)[:1] or [None]
        return image.image if image is not None else None

    progress.begin(len(chosen) + 1, "Block analyzer")
    percents, rows = [], []
    try:
        reference = render(None)
        progress.step(1)
        for block in chosen:
            if progress.interrupted or reference is None:
                break
            image = render(block)
            if image is None:
                break
            percents.append(changed_percent(reference, image, threshold))
            rows.append([diff_image(reference, image), image, reference])
            progress.preview(image)
            progress.step(1, f"{block}: {percents[-1]:.1f}%")
    finally:
        progress.end()
    out = Path(out_dir)
    done = chosen[: len(percents)]
    sheet = None
    if rows:
        labels = [f"{b}\nDiff: {p:.1f}%" for b, p in zip(done, percents)]
        sheet = save_png_atomic(labelled_grid(rows, ["diff", f"block at {low:g}", "reference"], labels),
                                out / "effect-sheet.png")
    chart = _bar_chart(done, percents, out / "effect.png", low, high) if percents else None
    return BlockEffect(done, percents, chart, sheet)


def _bar_chart(blocks: list[str], percents: list[float], path: Path, low: float, high: float) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from .analysis import _save_figure

    fig = Figure(figsize=(max(6.0, 0.35 * len(blocks) + 2), 4))
    ax = fig.subplots()
    ax.bar(range(len(blocks)), percents, color="tab:orange")
    ax.set_xticks(range(len(blocks)), blocks, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("changed pixel-channels (%)")
    ax.set_title(f"each block at {low:g} (others {high:g}) vs all at {high:g}")
    fig.tight_layout()
    return _save_figure(fig, path)


__all__ = ["BlockEffect", "block_effects", "changed_percent", "diff_image"]
