"""Prompt embeddings, encoded once before the loop (LECO's ``PromptEmbedsCache``, §A1.1).

After :meth:`PromptCache.encode_all` the loop never runs a text encoder again, so a caller that
owns the model may move the encoders off the GPU. The host's encoders are not moved here: they are
the host's own modules (A1111 keeps using them), and we never change what we do not own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from ..loop.text import TextConditioner


@dataclass
class Cond:
    """One prompt's U-Net conditioning: hidden states ``[1, L, D]`` and, for SDXL, the pooled ``[1, P]``."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None = None


class PromptCache:
    """Encodes each distinct prompt once and hands out batched U-Net conditioning.

    Args:
        views (`ModelViews`): the training views (text encoders, architecture).
        tokenizers (`list`): the host's tokenizers.
        clip_skip (`int`, *optional*): SD1/SD2 clip skip (the host's setting).
        dtype (`torch.dtype`): dtype the U-Net is fed in.
    """

    def __init__(self, views: Any, tokenizers: list[Any], clip_skip: int | None, dtype: torch.dtype) -> None:
        self.architecture = views.architecture
        self.conditioner = TextConditioner(views.architecture, list(views.text_encoders), tokenizers, clip_skip)
        self.device = next(views.unet.parameters()).device
        self.dtype = dtype
        self.cache: dict[str, Cond] = {}

    @torch.no_grad()
    def encode_all(self, prompts: Iterable[str]) -> int:
        """Encode every prompt not cached yet (one batch). Returns how many were encoded."""
        todo = sorted({p for p in prompts if p not in self.cache})
        if not todo:
            return 0
        hidden, pooled = self.conditioner.encode(todo, self.device)
        for i, text in enumerate(todo):
            self.cache[text] = Cond(
                hidden[i : i + 1].to(self.dtype).detach(),
                None if pooled is None else pooled[i : i + 1].to(self.dtype).detach(),
            )
        return len(todo)

    def batch(self, prompts: list[str], repeat: int, size: tuple[int, int]) -> dict[str, Any]:
        """U-Net keyword arguments for ``prompts`` (each repeated ``repeat`` times), at pixel ``size`` (W, H).

        Returns:
            `dict`: ``encoder_hidden_states`` and, for SDXL, ``added_cond_kwargs`` (pooled + time ids
            ``[h, w, 0, 0, h, w]``: original size, crop origin, target size).
        """
        conds = [self.cache[p] for p in prompts]
        hidden = torch.cat([c.hidden for c in conds]).repeat_interleave(repeat, dim=0)
        out: dict[str, Any] = {"encoder_hidden_states": hidden}
        if self.architecture == "sdxl":
            pooled = torch.cat([c.pooled for c in conds]).repeat_interleave(repeat, dim=0)  # type: ignore[misc]
            w, h = size
            time_ids = torch.tensor([[h, w, 0, 0, h, w]], device=self.device, dtype=self.dtype).repeat(pooled.shape[0], 1)
            out["added_cond_kwargs"] = {"text_embeds": pooled, "time_ids": time_ids}
        return out


__all__ = ["Cond", "PromptCache"]
