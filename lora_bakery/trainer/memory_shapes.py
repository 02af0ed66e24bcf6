"""Model sizes for :mod:`.memory_estimate`, from a diffusers U-Net config: no torch, no model.

Activation memory of a U-Net step is a sum over its ResNet blocks and transformer layers of
(channels x latent pixels) products; which product grows how much is fitted once by measurement
(see ``memory_estimate``). Here only the products are counted, exactly as diffusers'
``UNet2DConditionModel`` lays its blocks out (down: ``layers_per_block`` ResNets per level, up: one
more, each up ResNet reading the skip connection; a mid block of two ResNets and one transformer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Terms:
    """Per-sample element counts of one U-Net step at one latent size.

    Attributes:
        resnet (`int`): sum over ResNet blocks of (in + out channels) x pixels.
        resnet_in (`int`): sum over ResNet blocks of in channels x pixels (their inputs: what
            checkpointing keeps of them).
        transformer (`int`): sum over transformer layers of channels x pixels.
        transformer_in (`int`): sum over transformer modules (the stacks of layers) of channels x
            pixels (norm and projections around the layers, not checkpointed).
        context (`int`): sum over transformer layers of channels x tokens (cross-attention keys
            and values: they do not grow with the image).
        largest_resnet (`int`): the biggest single ResNet, (in + out) x pixels.
        largest_layer (`int`): the biggest single transformer layer, channels x pixels.
    """

    resnet: int
    resnet_in: int
    transformer: int
    transformer_in: int
    context: int
    largest_resnet: int
    largest_layer: int


def _per_level(value: Any, levels: int) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [int(value)] * levels


def unet_terms(config: dict[str, Any], height: int, width: int, tokens: int = 77) -> Terms:
    """Count :class:`Terms` for a U-Net config at a latent size (pixels / 8).

    Args:
        config (`dict`): ``UNet2DConditionModel`` config (``block_out_channels``, ``layers_per_block``,
            ``down_block_types``, ``transformer_layers_per_block``).
        height (`int`): latent height.
        width (`int`): latent width.
        tokens (`int`): caption tokens (77; 152/227 with max_token_length 150/225).
    """
    channels = list(config["block_out_channels"])
    levels = len(channels)
    per_block = int(config.get("layers_per_block", 2))
    attention = ["CrossAttn" in t for t in config["down_block_types"]]
    layers = _per_level(config.get("transformer_layers_per_block", 1), levels)
    pixels = []
    h, w = height, width
    for _ in range(levels):
        pixels.append(h * w)
        h, w = -(-h // 2), -(-w // 2)
    resnet = resnet_in = transformer = transformer_in = context = 0
    largest_resnet = largest_layer = 0

    def add_resnet(cin: int, cout: int, px: int) -> None:
        nonlocal resnet, resnet_in, largest_resnet
        resnet += (cin + cout) * px
        resnet_in += cin * px
        largest_resnet = max(largest_resnet, (cin + cout) * px)

    def add_transformer(c: int, n: int, px: int) -> None:
        nonlocal transformer, transformer_in, context, largest_layer
        transformer += n * c * px
        transformer_in += c * px
        context += n * c * tokens
        largest_layer = max(largest_layer, c * px)

    # down path
    previous = channels[0]
    for level, c in enumerate(channels):
        for i in range(per_block):
            add_resnet(previous if i == 0 else c, c, pixels[level])
            if attention[level]:
                add_transformer(c, layers[level], pixels[level])
        previous = c
    # mid block
    last = channels[-1]
    add_resnet(last, last, pixels[-1])
    add_transformer(last, layers[-1], pixels[-1])
    add_resnet(last, last, pixels[-1])
    # up path (diffusers: resnet j reads prev output (or own channels) + a skip)
    reversed_channels = channels[::-1]
    prev_out = reversed_channels[0]
    for i, c in enumerate(reversed_channels):
        level = levels - 1 - i
        below = reversed_channels[min(i + 1, levels - 1)]
        for j in range(per_block + 1):
            skip = below if j == per_block else c
            cin = (prev_out if j == 0 else c) + skip
            add_resnet(cin, c, pixels[level])
            if attention[level]:
                add_transformer(c, layers[level], pixels[level])
        prev_out = c
    return Terms(resnet, resnet_in, transformer, transformer_in, context, largest_resnet, largest_layer)


def text_terms(configs: list[dict[str, Any]], tokens: int = 77) -> int:
    """Per-sample elements of the text encoders' layers: sum of tokens x (hidden + intermediate)."""
    return sum(int(c["num_hidden_layers"]) * tokens * (int(c["hidden_size"]) + int(c["intermediate_size"])) for c in configs)
