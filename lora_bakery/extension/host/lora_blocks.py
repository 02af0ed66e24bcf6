"""LoRA Block Weight (lbw) arithmetic: block ids, vector expansion, key -> block, per-block scaling.

This sits in ``host/`` because ``LoraSpec.block_weights`` is part of the Host protocol: both hosts
(and the Compare tab's baking) must agree on which layer belongs to which block and on which file
tensor a block ratio multiplies. Pure Python; tensors are only multiplied, so no torch import.

Facts (reference/leco-lbw.md Part B, hako-mikan/sd-webui-lora-block-weight ``scripts/lora_block_weight.py``):

- Block sets: BLOCKID26 (SD1 LoCon), BLOCKID17 (SD1 attention LoRA), BLOCKID12 (SDXL LoRA),
  BLOCKID20 (SDXL LoCon). A 12/17/20-value vector is spread over the 26 slots by name (``to26``);
  **slots it does not name become 0**.
- A layer's block: A1111 first converts the key to CompVis names (``convert_diffusers_name_to_compvis``,
  ``extensions-builtin/Lora/networks.py``), then lbw matches substrings, the last match winning:
  ``encoder``/``embedders``/``transformer_resblocks`` -> BASE, ``diffusion_model_input_blocks_{n}_`` -> IN{n},
  ``diffusion_model_middle_block_`` -> M00, ``diffusion_model_output_blocks_{n}_`` -> OUT{n}.
  Unmatched layers keep ratio 1.
- The ratio multiplies one factor of the layer's delta, so the change is linear: ``lora_up`` (LoRA,
  LoCon, DoRA's direction), ``hada_w1_a`` (LoHa), ``lokr_w1``/``lokr_w1_a`` (LoKr), IA3 ``weight``,
  full ``diff``. OFT has no linear factor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

BLOCKID26 = ["BASE"] + [f"IN{i:02d}" for i in range(12)] + ["M00"] + [f"OUT{i:02d}" for i in range(12)]
BLOCKID17 = ["BASE", "IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "M00"] + [f"OUT{i:02d}" for i in range(3, 12)]
BLOCKID12 = ["BASE", "IN04", "IN05", "IN07", "IN08", "M00"] + [f"OUT{i:02d}" for i in range(6)]
BLOCKID20 = ["BASE"] + [f"IN{i:02d}" for i in range(9)] + ["M00"] + [f"OUT{i:02d}" for i in range(9)]
BLOCK_SETS: dict[int, list[str]] = {12: BLOCKID12, 17: BLOCKID17, 20: BLOCKID20, 26: BLOCKID26}

# lbw's substring list (``BLOCKS``): index 0 and the last two are BASE.
_LBW_BLOCKS: list[tuple[str, str]] = (
    [("encoder", "BASE")]
    + [(f"diffusion_model_input_blocks_{i}_", f"IN{i:02d}") for i in range(12)]
    + [("diffusion_model_middle_block_", "M00")]
    + [(f"diffusion_model_output_blocks_{i}_", f"OUT{i:02d}") for i in range(12)]
    + [("embedders", "BASE"), ("transformer_resblocks", "BASE")]
)

# The factor of each file format that a block ratio multiplies (lbw ``LORAANDSOON``), by file suffix.
LINEAR_FACTORS = ("lora_up.weight", "hada_w1_a", "lokr_w1", "lokr_w1_a", "diff")
IA3_MARKER, IA3_FACTOR = "on_input", "weight"
NON_LINEAR = ("oft_blocks", "oft_diag")


def block_set(length: int) -> list[str]:
    """The block ids named by a vector of ``length`` values (12, 17, 20 or 26).

    Raises:
        ValueError: any other length.
    """
    if length not in BLOCK_SETS:
        raise ValueError(f"a block-weight vector has 12, 17, 20 or 26 values, got {length}")
    return BLOCK_SETS[length]


def expand_block_weights(values: Sequence[float]) -> list[float]:
    """lbw ``to26``: spread a 12/17/20/26-value vector over the 26 SD1 LoCon slots by block name.

    Args:
        values (`Sequence[float]`): ratios in the order of the block set of that length.

    Returns:
        `list[float]`: 26 ratios in BLOCKID26 order; slots the input does not name are 0.

    Raises:
        ValueError: unsupported length.
    """
    ids = block_set(len(values))
    out = [0.0] * 26
    for block, value in zip(ids, values):
        out[BLOCKID26.index(block)] = float(value)
    return out


# -- key conversion (A1111 1.10.1 extensions-builtin/Lora/networks.py convert_diffusers_name_to_compvis) --
_RE_DOWN = re.compile(r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)")
_RE_MID = re.compile(r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)")
_RE_UP = re.compile(r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)")
_RE_DOWNSAMPLE = re.compile(r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv")
_RE_UPSAMPLE = re.compile(r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv")
_RE_TIME = re.compile(r"lora_unet_time_embedding_linear_(\d+)(.*)")


def compvis_name(layer: str) -> str:
    """The A1111 layer name of a kohya layer name (U-Net part; text encoders by their prefix).

    Only as much of the conversion as decides the block: the index arithmetic of
    ``convert_diffusers_name_to_compvis`` (fixed 3 LDM blocks per level, as A1111 has it) and the
    fallbacks of ``load_network`` (``lora_unet`` -> ``diffusion_model``, ``lora_te1_text_model`` ->
    ``0_transformer_text_model``).

    Args:
        layer (`str`): e.g. ``lora_unet_down_blocks_1_attentions_0_proj_in`` (no ``.lora_up.weight``).

    Returns:
        `str`: e.g. ``diffusion_model_input_blocks_4_1_proj_in``; names already in A1111 form unchanged.
    """
    if layer.startswith("lora_unet_conv_in"):
        return "diffusion_model_input_blocks_0_0" + layer[len("lora_unet_conv_in") :]
    if layer.startswith("lora_unet_conv_out"):
        return "diffusion_model_out_2" + layer[len("lora_unet_conv_out") :]
    m = _RE_TIME.fullmatch(layer)
    if m:
        return f"diffusion_model_time_embed_{int(m[1]) * 2 - 2}{m[2]}"
    m = _RE_DOWN.fullmatch(layer)
    if m:
        return f"diffusion_model_input_blocks_{1 + int(m[1]) * 3 + int(m[3])}_{1 if m[2] == 'attentions' else 0}_{m[4]}"
    m = _RE_MID.fullmatch(layer)
    if m:
        return f"diffusion_model_middle_block_{1 if m[1] == 'attentions' else int(m[2]) * 2}_{m[3]}"
    m = _RE_UP.fullmatch(layer)
    if m:
        return f"diffusion_model_output_blocks_{int(m[1]) * 3 + int(m[3])}_{1 if m[2] == 'attentions' else 0}_{m[4]}"
    m = _RE_DOWNSAMPLE.fullmatch(layer)
    if m:
        return f"diffusion_model_input_blocks_{3 + int(m[1]) * 3}_0_op"
    m = _RE_UPSAMPLE.fullmatch(layer)
    if m:
        return f"diffusion_model_output_blocks_{2 + int(m[1]) * 3}_{2 if int(m[1]) > 0 else 1}_conv"
    if layer.startswith("lora_te_text_model_"):
        return "transformer_" + layer[len("lora_te_") :]
    if layer.startswith("lora_te1_text_model_"):
        return "0_transformer_" + layer[len("lora_te1_") :]
    if layer.startswith("lora_te2_text_model_encoder_layers_"):
        return "1_model_transformer_resblocks_" + layer[len("lora_te2_text_model_encoder_layers_") :]
    if layer.startswith("lora_unet_"):
        return "diffusion_model_" + layer[len("lora_unet_") :]
    return layer


def layer_block(layer: str) -> str | None:
    """The lbw block id of a layer (kohya or A1111 name), or ``None`` when lbw leaves it at ratio 1.

    Args:
        layer (`str`): ``lora_unet_…``/``lora_te…`` file layer, or an A1111 ``network_layer_name``.

    Returns:
        `str | None`: ``"BASE"``, ``"IN00"`` … ``"IN11"``, ``"M00"``, ``"OUT00"`` … ``"OUT11"``, or ``None``.
    """
    name = compvis_name(layer)
    found = None
    for needle, block in _LBW_BLOCKS:
        if needle in name:
            found = block  # the last match wins, as in lbw
    return found


def layer_ratio(layer: str, weights26: Sequence[float]) -> float:
    """The ratio lbw gives one layer: its block's slot of a 26-value vector, 1 when unmatched."""
    block = layer_block(layer)
    return 1.0 if block is None else float(weights26[BLOCKID26.index(block)])


def group_layers(keys: Iterable[str]) -> dict[str, list[str]]:
    """File keys grouped by layer (the part before the first ``.``): ``{layer: [suffix, ...]}``."""
    layers: dict[str, list[str]] = {}
    for key in keys:
        name, _, suffix = key.partition(".")
        layers.setdefault(name, []).append(suffix)
    return layers


def linear_factor(suffixes: Sequence[str]) -> str:
    """The suffix of the tensor a block ratio multiplies for one layer of a file.

    Raises:
        ValueError: a format without a linear factor (OFT) or one not recognised.
    """
    for suffix in LINEAR_FACTORS:
        if suffix in suffixes:
            return suffix
    if IA3_MARKER in suffixes and IA3_FACTOR in suffixes:
        return IA3_FACTOR
    if any(s in suffixes for s in NON_LINEAR):
        raise ValueError("OFT layers have no linear factor; per-block weights cannot be applied to them")
    raise ValueError(f"unrecognised network layer tensors: {', '.join(sorted(suffixes))}")


def scale_layers(tensors: Mapping[str, Any], ratios: Mapping[str, float]) -> dict[str, Any]:
    """Multiply each layer's linear factor by its ratio; layers at ratio 1 keep their very tensors.

    The product is computed in fp32 and cast back to the tensor's dtype, so a fp16 file stays fp16.

    Args:
        tensors (`Mapping[str, torch.Tensor]`): file key -> tensor.
        ratios (`Mapping[str, float]`): layer name -> ratio (layers not named keep 1).

    Returns:
        `dict[str, torch.Tensor]`: a new dict; unchanged tensors are the same objects.
    """
    out = dict(tensors)
    for layer, suffixes in group_layers(tensors).items():
        ratio = float(ratios.get(layer, 1.0))
        if ratio == 1.0:
            continue
        key = f"{layer}.{linear_factor(suffixes)}"
        tensor = tensors[key]
        out[key] = (tensor.float() * ratio).to(tensor.dtype)
    return out


def block_ratios(
    layers: Iterable[str], weights: Sequence[float] | None, te: float = 1.0, unet: float = 1.0
) -> dict[str, float]:
    """Per-layer ratio: the lbw block ratio (when ``weights``) times a text-encoder/U-Net factor.

    Args:
        layers (`Iterable[str]`): layer names.
        weights (`Sequence[float]`, *optional*): 12/17/20/26 block ratios (BASE = text encoders).
        te (`float`, defaults to 1.0): extra factor of text-encoder layers.
        unet (`float`, defaults to 1.0): extra factor of U-Net layers.

    Returns:
        `dict[str, float]`: layer -> ratio.
    """
    weights26 = expand_block_weights(weights) if weights is not None else None
    out = {}
    for layer in layers:
        base = layer_ratio(layer, weights26) if weights26 is not None else 1.0
        out[layer] = base * (te if is_text_encoder_layer(layer) else unet)
    return out


def is_text_encoder_layer(layer: str) -> bool:
    """A1111's rule: the te multiplier applies when ``transformer`` is in the first 20 characters."""
    return layer.startswith("lora_te") or "transformer" in compvis_name(layer)[:20]


def scale_block_tensors(tensors: Mapping[str, Any], weights: Sequence[float]) -> dict[str, Any]:
    """What lbw does to a loaded file: each layer's linear factor times its block's ratio.

    Args:
        tensors (`Mapping[str, torch.Tensor]`): kohya/LyCORIS file tensors.
        weights (`Sequence[float]`): 12/17/20/26 block ratios.

    Returns:
        `dict[str, torch.Tensor]`: scaled tensors (a new dict).
    """
    return scale_layers(tensors, block_ratios(group_layers(tensors), weights))


__all__ = [
    "BLOCKID12",
    "BLOCKID17",
    "BLOCKID20",
    "BLOCKID26",
    "BLOCK_SETS",
    "block_ratios",
    "block_set",
    "compvis_name",
    "expand_block_weights",
    "group_layers",
    "is_text_encoder_layer",
    "layer_block",
    "layer_ratio",
    "linear_factor",
    "scale_block_tensors",
    "scale_layers",
]
