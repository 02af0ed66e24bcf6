"""Which model family a checkpoint belongs to, from its key names (as A1111's ``set_model_type`` does)."""

from __future__ import annotations

from collections.abc import Iterable

_UNET = "model.diffusion_model.input_blocks.0.0.weight"
_SDXL = "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight"
_SDXL_REFINER = "conditioner.embedders.0.model.transformer.resblocks.0.attn.in_proj_weight"
_SD2 = "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight"
_SD1 = "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"


def detect_architecture(keys: Iterable[str]) -> str:
    """Tell SD1, SD2 and SDXL apart by the text encoder's key layout.

    SDXL has a ``conditioner`` whose second embedder is OpenCLIP bigG; SD2 stores OpenCLIP-H under
    ``cond_stage_model.model``; SD1 stores OpenAI CLIP-L in HF layout under ``cond_stage_model.transformer``.

    Args:
        keys (`Iterable[str]`): checkpoint keys (LDM/SGM layout, ``wrapped`` segments already dropped).

    Returns:
        `str`: ``"sd1"``, ``"sd2"`` or ``"sdxl"``.

    Raises:
        ValueError: the keys are none of these (the message shows a few of them).
    """
    keys = set(keys)
    if _UNET in keys:
        if _SDXL in keys:
            return "sdxl"
        if _SD2 in keys:
            return "sd2"
        if _SD1 in keys:
            return "sd1"
        if _SDXL_REFINER in keys:
            raise ValueError("this is an SDXL refiner checkpoint; only base models can be trained")
    sample = ", ".join(sorted(keys)[:5]) or "(no keys)"
    raise ValueError(
        "not a Stable Diffusion 1.x, 2.x or XL checkpoint in original (LDM/SGM) key layout; "
        f"it has {len(keys)} keys, e.g. {sample}"
    )
