"""The checkpoint layout a set of configs implies: every original key and its shape.

This is the view builder's key tables read backwards, with no weights allocated (modules are
built on the meta device). ``lora_bakery.trainer.tiny`` writes its checkpoints from it, and tests
compare it with the key list of a live A1111 model.
"""

from __future__ import annotations

from collections import defaultdict

import torch

from .base import ModelConfigs
from .families import family_for
from .keys import KeyEntry, checkpoint_shape
from .views import empty_module


def checkpoint_shapes(configs: ModelConfigs) -> dict[str, tuple[int, ...]]:
    """Every checkpoint key the modules of ``configs`` need, with its shape in the checkpoint.

    Args:
        configs (`ModelConfigs`): e.g. from ``infer_configs`` or ``tiny_configs``.

    Returns:
        `dict[str, tuple[int, ...]]`: original (LDM/SGM) key -> shape, sorted by key.
    """
    groups: dict[str, list[tuple[KeyEntry, torch.Size]]] = defaultdict(list)
    for component in family_for(configs.architecture).components(configs):
        module = empty_module(component)
        for name, param in module.named_parameters():
            entry = component.entry(name)
            groups[entry.source].append((entry, param.shape))
    shapes = {}
    for source in sorted(groups):
        members = sorted(groups[source], key=lambda item: item[0].index)
        shapes[source] = checkpoint_shape([e for e, _ in members], [s for _, s in members])
    return shapes
