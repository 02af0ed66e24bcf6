"""Which host layers an adapter wraps, and the kohya name and block of each (reference/kohya-trainer.md §1-2).

Selection is sd-scripts' (``networks/lora.py create_modules``): every ``Linear``/``Conv2d`` inside a
U-Net ``Transformer2DModel`` (plus ``ResnetBlock2D``/``Downsample2D``/``Upsample2D`` when 3x3 convs
are on: LoCon), and inside each CLIP text encoder's attention and MLP blocks. 1x1 convs and Linears
take ``dim``/``alpha``; 3x3 convs take ``conv_dim``/``conv_alpha``.

Names are ``<prefix>_<module path>`` with ``.`` -> ``_``:

- SD1 U-Net: the diffusers path (kohya's SD1 U-Net has diffusers layout), e.g.
  ``lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q``;
- SDXL U-Net: the SGM path (kohya's ``sdxl_original_unet``), e.g.
  ``lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k``, ``..._in_layers_2``, ``..._op``;
- text encoders: ``lora_te_`` (SD1) or ``lora_te1_``/``lora_te2_`` (SDXL) + ``text_model_encoder_layers_N_...``,
  whatever the transformers version (5.x has no ``text_model.`` module prefix).

Blocks use LBW-style ids from the LDM path: ``IN00``..``IN11``, ``M00`` (SDXL: ``M00``..``M02``),
``OUT00``..``OUT11``; text encoders are ``BASE``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from ..models.ldm_keys import unet_ldm_name

UNET_TARGETS = ("Transformer2DModel",)
UNET_CONV_TARGETS = ("ResnetBlock2D", "Downsample2D", "Upsample2D")
TEXT_TARGETS = ("CLIPAttention", "CLIPSdpaAttention", "CLIPFlashAttention2", "CLIPMLP")

# architecture -> (U-Net naming, text encoder prefixes)
NAMING: dict[str, tuple[str, tuple[str, ...]]] = {
    "sd1": ("diffusers", ("lora_te",)),
    "sdxl": ("ldm", ("lora_te1", "lora_te2")),
}
# kohya's block_dims / block_lr_weight list positions (reference §2); None = no LoRA there.
KOHYA_BLOCKS: dict[str, list[str | None]] = {
    "sd1": [f"IN{i:02d}" for i in range(12)] + ["M00"] + [f"OUT{i:02d}" for i in range(12)],
    "sdxl": [None]
    + [f"IN{i:02d}" for i in range(9)]
    + [f"M{i:02d}" for i in range(3)]
    + [f"OUT{i:02d}" for i in range(9)]
    + [None],
}
TEXT_BLOCK = "BASE"


@dataclass(frozen=True)
class Target:
    """One host layer an adapter may wrap.

    Attributes:
        name (`str`): kohya name (file key prefix).
        module (`nn.Module`): the host ``Linear``/``Conv2d``.
        text_encoder (`int | None`): text encoder index, ``None`` for the U-Net.
        block (`str`): ``"BASE"`` for text encoders, else ``"IN01"``, ``"M00"``, ``"OUT05"``...
        conv3x3 (`bool`): a conv with a kernel larger than 1x1 (takes ``conv_dim``).
        fused_qkv (`bool`): SDXL OpenCLIP attention, which A1111 holds as one ``MultiheadAttention``.
    """

    name: str
    module: nn.Module
    text_encoder: int | None
    block: str
    conv3x3: bool
    fused_qkv: bool = False


def _children(parent: nn.Module) -> list[tuple[str, nn.Module]]:
    return [
        (name, child)
        for name, child in parent.named_modules()
        if name and isinstance(child, (nn.Linear, nn.Conv2d))
    ]


def block_id(ldm_path: str, architecture: str) -> str:
    """LBW-style block id of an LDM/SGM U-Net module path (``input_blocks.4.1.proj_in`` -> ``IN04``)."""
    head, _, rest = ldm_path.partition(".")
    index = int(rest.partition(".")[0]) if rest else 0
    if head == "input_blocks":
        return f"IN{index:02d}"
    if head == "output_blocks":
        return f"OUT{index:02d}"
    if head == "middle_block":
        return f"M{index:02d}" if architecture == "sdxl" else "M00"
    raise ValueError(f"{ldm_path!r} is not inside a U-Net block")


def unet_targets(
    unet: nn.Module, architecture: str, config: Mapping[str, Any], include_conv: bool
) -> list[Target]:
    """The U-Net layers kohya adapts, named and placed in blocks.

    Args:
        unet (`nn.Module`): the diffusers ``UNet2DConditionModel`` view.
        architecture (`str`): ``"sd1"`` or ``"sdxl"``.
        config (`Mapping`): the U-Net config (``layers_per_block``, ``up_block_types``).
        include_conv (`bool`): also ResNet/Downsample/Upsample layers (LoCon, LyCORIS with conv_dim).

    Returns:
        `list[Target]`: in module order.
    """
    naming = NAMING[architecture][0]
    parents = UNET_TARGETS + (UNET_CONV_TARGETS if include_conv else ())
    targets = []
    for parent_name, parent in unet.named_modules():
        if type(parent).__name__ not in parents:
            continue
        for child_name, child in _children(parent):
            path = f"{parent_name}.{child_name}"
            ldm = unet_ldm_name(path + ".weight", config)[: -len(".weight")]
            name = "lora_unet_" + (path if naming == "diffusers" else ldm).replace(".", "_")
            conv3x3 = isinstance(child, nn.Conv2d) and tuple(child.kernel_size) != (1, 1)
            targets.append(Target(name, child, None, block_id(ldm, architecture), conv3x3))
    return targets


def text_encoder_targets(text_encoders: Sequence[nn.Module], architecture: str) -> list[Target]:
    """The text-encoder layers kohya adapts (attention q/k/v/out and MLP fc1/fc2 of every layer).

    Args:
        text_encoders (`Sequence[nn.Module]`): transformers CLIP text models, in family order.
        architecture (`str`): ``"sd1"`` or ``"sdxl"``.

    Returns:
        `list[Target]`: named ``lora_te_text_model_...`` (SD1) or ``lora_te{1,2}_text_model_...`` (SDXL).
    """
    prefixes = NAMING[architecture][1]
    targets = []
    for index, (encoder, prefix) in enumerate(zip(text_encoders, prefixes)):
        fused = architecture == "sdxl" and index == 1  # OpenCLIP bigG: nn.MultiheadAttention in A1111
        for parent_name, parent in encoder.named_modules():
            if type(parent).__name__ not in TEXT_TARGETS:
                continue
            path = parent_name[len("text_model.") :] if parent_name.startswith("text_model.") else parent_name
            is_attention = type(parent).__name__ != "CLIPMLP"
            for child_name, child in _children(parent):
                name = f"{prefix}_text_model_{path}.{child_name}".replace(".", "_")
                targets.append(Target(name, child, index, TEXT_BLOCK, False, fused and is_attention))
    return targets


V = TypeVar("V")


def block_values(values: Sequence[V], architecture: str) -> dict[str, V]:
    """kohya's positional per-block list (25 values SD1, 23 SDXL) as ``{block id: value}``.

    Args:
        values (`Sequence`): ``block_dims``, ``block_alphas``, ``block_lr_weight``... in kohya's order.
        architecture (`str`): ``"sd1"`` or ``"sdxl"``.

    Returns:
        `dict[str, value]`: positions without LoRA (SDXL time/label embedding and ``out``) are dropped.

    Raises:
        ValueError: wrong length for the architecture.
    """
    layout = KOHYA_BLOCKS[architecture]
    if len(values) != len(layout):
        raise ValueError(f"{architecture} needs {len(layout)} per-block values, got {len(values)}")
    return {block: value for block, value in zip(layout, values) if block is not None}
