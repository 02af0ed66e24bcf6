"""Bake block weights into a new LoRA file: exact, linear, the original never touched.

Each layer's linear factor (``lora_up``, ``hada_w1_a``, ``lokr_w1``…; the tensor lbw scales at
run time) is multiplied by its block ratio, so the new file at weight *w* gives exactly what the
original gives at weight *w* with those block weights. This is lbw's own arithmetic, not
supermerger's merge, which scales up *and* down and so squares the ratio (reference B7).

Options: an overall strength rebase (``weight w behaves like w'``: every factor times ``w'/w``),
and dropping the layers of zeroed blocks (smaller file; same images). The metadata records what
was applied (``bakery_block_weights``) and gets fresh ``sshs_*`` hashes; a new output name keeps
A1111 from treating the file as an alias of the original.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lora_bakery.extension.host.lora_blocks import (
    block_ratios,
    expand_block_weights,
    group_layers,
    scale_layers,
)


@dataclass
class BakeResult:
    """What :func:`bake_block_weights` wrote.

    Attributes:
        path (`Path`): the new file.
        weights26 (`list[float]`): the block ratios applied (26 slots).
        rebase (`float`): the overall factor (``w'/w``; 1 when none).
        dropped_layers (`int`): layers removed because their ratio was 0.
        layers (`int`): layers in the new file.
    """

    path: Path
    weights26: list[float]
    rebase: float
    dropped_layers: int
    layers: int


def default_output(source: str | Path, label: str) -> Path:
    """``<stem>_<label>.safetensors`` beside the source (label made file-name safe)."""
    import re

    source = Path(source)
    safe = re.sub(r"[^0-9A-Za-z_.-]+", "_", label).strip("_") or "blocks"
    return source.with_name(f"{source.stem}_{safe}.safetensors")


def bake_block_weights(
    source: str | Path,
    weights: Sequence[float],
    output: str | Path | None = None,
    *,
    label: str = "lbw",
    rebase_from: float | None = None,
    rebase_to: float | None = None,
    drop_zero_blocks: bool = False,
    overwrite: bool = False,
) -> BakeResult:
    """Write a copy of ``source`` with per-block ratios baked into its linear factors.

    Args:
        source (`str | Path`): the LoRA file (read only).
        weights (`Sequence[float]`): 12/17/20/26 lbw ratios (BASE = text encoder layers).
        output (`str | Path`, *optional*): new file; ``<stem>_<label>.safetensors`` beside the source by default.
        label (`str`, defaults to ``"lbw"``): preset name for the default file name and metadata.
        rebase_from (`float`, *optional*): with ``rebase_to``: the new file at weight ``rebase_from``
            behaves like the baked one at ``rebase_to`` (every factor times ``rebase_to / rebase_from``).
        rebase_to (`float`, *optional*): see ``rebase_from``.
        drop_zero_blocks (`bool`, defaults to `False`): leave out layers whose ratio is 0.
        overwrite (`bool`, defaults to `False`): replace an existing output (never the source).

    Returns:
        `BakeResult`: the file and what was applied.

    Raises:
        ValueError: bad vector length, output equal to the source, a format without linear factor (OFT),
            or a zero ``rebase_from``.
        FileExistsError: the output exists and ``overwrite`` is false.
    """
    from lora_bakery.trainer.saving import load_network, save_network

    source = Path(source)
    target = Path(output) if output is not None else default_output(source, label)
    if target.resolve() == source.resolve():
        raise ValueError("the baked file must be a new file; the original is never modified")
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists; not overwriting it")
    weights26 = expand_block_weights(list(weights))
    rebase = 1.0
    if rebase_from is not None or rebase_to is not None:
        if not rebase_from:
            raise ValueError("rebase: the weight to rebase from must be non-zero")
        rebase = float(rebase_to if rebase_to is not None else rebase_from) / float(rebase_from)
    tensors, metadata = load_network(source)
    layers = group_layers(tensors)
    ratios = block_ratios(layers, weights26, te=rebase, unet=rebase)
    baked = scale_layers(tensors, ratios)
    dropped = 0
    if drop_zero_blocks:
        zero = {layer for layer, ratio in ratios.items() if ratio == 0.0}
        dropped = len(zero)
        baked = {k: v for k, v in baked.items() if k.partition(".")[0] not in zero}
    meta = {k: v for k, v in metadata.items() if not k.startswith("sshs_")}
    meta["ss_output_name"] = target.stem
    meta["bakery_block_weights"] = json.dumps({
        "source": source.name,
        "source_hash": metadata.get("sshs_model_hash", ""),
        "preset": label,
        "weights": [float(w) for w in weights],
        "weights26": weights26,
        "rebase": rebase,
        "dropped_layers": dropped,
        "method": "linear factor (lora_up) x block ratio, as lbw",
    })
    save_network(target, baked, meta, precision=None, overwrite=overwrite)
    return BakeResult(target, weights26, rebase, dropped, len(layers) - dropped)


__all__ = ["BakeResult", "bake_block_weights", "default_output"]
