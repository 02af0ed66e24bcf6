"""Key tables shared by every model family: how one module parameter maps onto checkpoint tensors.

A view is built by walking the parameters of an empty (meta) diffusers/transformers module and asking a
family's *mapper* which checkpoint tensor backs each one. The answer is a :class:`KeyEntry`: the
checkpoint key plus the layout change needed (none, a 1x1-conv squeeze, a transpose, or one row chunk
of a fused tensor). The same entries, read backwards, give the checkpoint shape of a module parameter;
``lora_bakery.trainer.tiny`` uses that to write checkpoints in original key layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SAME = "same"
SQUEEZE = "squeeze"  # LDM VAE attention: 1x1 conv [C, C, 1, 1] <-> Linear [C, C]
TRANSPOSE = "transpose"  # open_clip text_projection (used as x @ P) <-> Linear weight P.T
CHUNK = "chunk"  # open_clip fused in_proj [3C, ...] <-> q/k/v rows


@dataclass(frozen=True)
class KeyEntry:
    """Where one module parameter lives in a checkpoint.

    Attributes:
        target (`str`): parameter name inside the diffusers/transformers module.
        source (`str`): checkpoint key holding its values.
        layout (`str`, defaults to ``"same"``): ``"same"``, ``"squeeze"``, ``"transpose"`` or ``"chunk"``.
        index (`int`, defaults to 0): for ``"chunk"``, which row block (0=q, 1=k, 2=v).
        parts (`int`, defaults to 1): for ``"chunk"``, how many row blocks the fused tensor holds.
    """

    target: str
    source: str
    layout: str = SAME
    index: int = 0
    parts: int = 1


def module_view(entry: KeyEntry, tensor: torch.Tensor) -> torch.Tensor:
    """The module-layout view of a checkpoint tensor, sharing its storage (never a copy).

    Args:
        entry (`KeyEntry`): how the parameter maps onto ``tensor``.
        tensor (`torch.Tensor`): the checkpoint tensor (already detached).

    Returns:
        `torch.Tensor`: a view of ``tensor`` in the shape the module expects.
    """
    if entry.layout == SAME:
        return tensor
    if entry.layout == SQUEEZE:
        # Checkpoints converted by other tools may already hold the Linear shape.
        return tensor.view(tensor.shape[0], tensor.shape[1]) if tensor.ndim == 4 else tensor
    if entry.layout == TRANSPOSE:
        return tensor.t()
    if entry.layout == CHUNK:
        rows = tensor.shape[0] // entry.parts
        return tensor[entry.index * rows : (entry.index + 1) * rows]
    raise ValueError(f"unknown layout {entry.layout!r} for {entry.target}")


def checkpoint_shape(entries: list[KeyEntry], shapes: list[torch.Size]) -> tuple[int, ...]:
    """The shape of one checkpoint tensor, from the module parameters it backs (inverse of :func:`module_view`).

    Args:
        entries (`list[KeyEntry]`): every entry with the same ``source`` (three for a fused q/k/v).
        shapes (`list[torch.Size]`): the module parameter shapes, in the same order.

    Returns:
        `tuple[int, ...]`: the checkpoint tensor shape.
    """
    entry, shape = entries[0], tuple(shapes[0])
    if entry.layout == SAME:
        return shape
    if entry.layout == SQUEEZE:
        return shape + (1, 1) if len(shape) == 2 else shape
    if entry.layout == TRANSPOSE:
        return tuple(reversed(shape))
    if entry.layout == CHUNK:
        if len(entries) != entry.parts:
            raise ValueError(f"{entry.source}: expected {entry.parts} chunks, got {len(entries)}")
        return (shape[0] * entry.parts,) + shape[1:]
    raise ValueError(f"unknown layout {entry.layout!r} for {entry.target}")


def replace_prefix(name: str, table: list[tuple[str, str]]) -> str:
    """Rename ``name`` by the first matching ``(old_prefix, new_prefix)`` pair, or return it unchanged."""
    for old, new in table:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def checkpoint_key_from_live_name(name: str) -> str:
    """Turn a live A1111 parameter name into its checkpoint key by dropping ``wrapped`` segments.

    A1111 wraps the text encoder (``cond_stage_model.wrapped.transformer...``) and its token
    embedding (``...token_embedding.wrapped.weight``); the checkpoint file has neither segment.

    Args:
        name (`str`): a name from ``shared.sd_model.named_parameters()``.

    Returns:
        `str`: the same name with every ``wrapped`` path segment removed.

    Example: ``cond_stage_model.wrapped.transformer.text_model.embeddings.token_embedding.wrapped.weight``
    becomes ``cond_stage_model.transformer.text_model.embeddings.token_embedding.weight``.
    """
    return ".".join(part for part in name.split(".") if part != "wrapped")
