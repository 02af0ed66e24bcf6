"""Captions → U-Net conditioning, the way kohya's trainer (and A1111 at inference) builds it.

- SD1/SD2: ``last_hidden_state``; with clip skip n > 1, ``hidden_states[-n]`` followed by the
  final layer norm (kohya ``get_hidden_states``, A1111's CLIP_stop_at_last_layers).
- SDXL: both encoders' penultimate hidden states (no final norm) concatenated, the second
  encoder's projected pooled output, and the six size/crop "time ids" (kohya
  ``strategy_sdxl``/``sdxl_train_util``); clip skip does not apply.
- ``max_token_length`` 150/225: the caption is tokenised to n·75+2 tokens and each
  ``BOS + 75 + EOS`` chunk is encoded on its own; the result keeps BOS, the middle 75 of each
  chunk and the last EOS (reference/kohya-trainer.md §7).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch


def input_ids(tokenizer: Any, captions: Sequence[str], max_token_length: int | None) -> torch.Tensor:
    """Token ids ``[B, n_chunks, model_max_length]`` (kohya ``get_input_ids``).

    Args:
        tokenizer (`CLIPTokenizer`): the encoder's tokenizer.
        captions (`Sequence[str]`): processed captions.
        max_token_length (`int`, *optional*): 75 (or ``None``), 150 or 225.

    Returns:
        `torch.Tensor`: int64 ids.
    """
    model_max = int(tokenizer.model_max_length)
    total = model_max if not max_token_length or max_token_length + 2 <= model_max else max_token_length + 2
    ids = tokenizer(list(captions), padding="max_length", truncation=True, max_length=total, return_tensors="pt").input_ids
    if total == model_max:
        return ids.unsqueeze(1)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    out = []
    for row in ids:
        chunks = []
        for i in range(1, total - model_max + 2, model_max - 2):
            chunk = torch.cat((row[:1], row[i : i + model_max - 2], row[-1:]))
            if pad != eos:  # SD2/SDXL tokenizers pad with "!": kohya's EOS fix-ups
                if chunk[-2] not in (eos, pad):
                    chunk[-1] = eos
                if chunk[1] == pad:
                    chunk[1] = eos
            chunks.append(chunk)
        out.append(torch.stack(chunks))
    return torch.stack(out)


def _join_chunks(hidden: torch.Tensor, batch: int, n_chunks: int, model_max: int) -> torch.Tensor:
    """``[B·n, L, D]`` → ``[B, 1 + 75·n + 1, D]`` keeping BOS, each chunk's middle and the last EOS."""
    hidden = hidden.reshape(batch, n_chunks * model_max, hidden.shape[-1])
    if n_chunks == 1:
        return hidden
    parts = [hidden[:, :1]]
    for i in range(1, n_chunks * model_max, model_max):
        parts.append(hidden[:, i : i + model_max - 2])
    parts.append(hidden[:, -1:])
    return torch.cat(parts, dim=1)


def _final_norm(encoder: Any) -> Any:
    # transformers 5.x CLIPTextModel may expose the layers without the ``text_model`` wrapper
    return getattr(encoder, "text_model", encoder).final_layer_norm


class TextConditioner:
    """Encodes captions for one model family.

    Args:
        architecture (`str`): ``"sd1"``, ``"sd2"`` or ``"sdxl"``.
        text_encoders (`list`): the view modules.
        tokenizers (`list`): one tokenizer per encoder.
        clip_skip (`int`, *optional*): SD1/SD2 only; 1 or ``None`` = last layer.
        max_token_length (`int`, *optional*): 75 / 150 / 225.
    """

    def __init__(
        self,
        architecture: str,
        text_encoders: list[Any],
        tokenizers: list[Any],
        clip_skip: int | None = None,
        max_token_length: int | None = None,
    ) -> None:
        if len(tokenizers) < len(text_encoders):
            raise ValueError(f"{architecture} needs {len(text_encoders)} tokenizer(s), the host gave {len(tokenizers)}")
        self.architecture = architecture
        self.text_encoders = text_encoders
        self.tokenizers = tokenizers
        self.clip_skip = clip_skip or 1
        self.max_token_length = max_token_length

    def _run(self, encoder: Any, ids: torch.Tensor, device: torch.device) -> tuple[Any, int, int]:
        batch, n_chunks, model_max = ids.shape
        out = encoder(ids.reshape(-1, model_max).to(device), output_hidden_states=True, return_dict=True)
        return out, batch, n_chunks

    def encode(self, captions: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Conditioning for a batch of captions.

        Args:
            captions (`Sequence[str]`): processed captions.
            device (`torch.device`): where the encoders are.

        Returns:
            `tuple`: ``encoder_hidden_states`` ``[B, L, D]`` and, for SDXL, the pooled embedding ``[B, P]``.
        """
        if self.architecture == "sdxl":
            return self._encode_sdxl(captions, device)
        encoder, tokenizer = self.text_encoders[0], self.tokenizers[0]
        ids = input_ids(tokenizer, captions, self.max_token_length)
        out, batch, n_chunks = self._run(encoder, ids, device)
        if self.clip_skip > 1:
            hidden = _final_norm(encoder)(out.hidden_states[-self.clip_skip])
        else:
            hidden = out.last_hidden_state
        return _join_chunks(hidden, batch, n_chunks, ids.shape[-1]), None

    def _encode_sdxl(self, captions: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = []
        pooled = None
        for index, (encoder, tokenizer) in enumerate(zip(self.text_encoders, self.tokenizers)):
            ids = input_ids(tokenizer, captions, self.max_token_length)
            out, batch, n_chunks = self._run(encoder, ids, device)
            hidden.append(_join_chunks(out.hidden_states[-2], batch, n_chunks, ids.shape[-1]))
            if index == 1:
                pooled = out.text_embeds.reshape(batch, n_chunks, -1)[:, 0]  # kohya: the first chunk's pool
        return torch.cat(hidden, dim=-1), pooled


def sdxl_time_ids(items: Sequence[Any], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """SDXL size conditioning ``[B, 6]``: original (h, w), crop top-left (top, left), target (h, w).

    Args:
        items (`Sequence[TrainItem]`): the batch's items (``choice.size`` is the original image size,
            ``choice.bucket`` the target).
        device (`torch.device`): result device.
        dtype (`torch.dtype`): result dtype.
    """
    from ..data.buckets import sdxl_crop_ltrb

    rows = []
    for item in items:
        (ow, oh), (bw, bh) = item.choice.size, item.choice.bucket
        left, top, _, _ = sdxl_crop_ltrb(item.choice.bucket, item.choice.size)
        rows.append([oh, ow, int(top), int(left), bh, bw])
    return torch.tensor(rows, device=device, dtype=dtype)


#: Caption options that change a caption from step to step, so its encoding cannot be cached
#: (kohya ``is_text_encoder_output_cacheable``; wildcards and every-N-epochs dropout vary it too).
VARYING_CAPTION_OPTIONS = (
    "shuffle_caption",
    "caption_dropout_rate",
    "caption_dropout_every_n_epochs",
    "caption_tag_dropout_rate",
    "token_warmup_step",
    "enable_wildcard",
)


def varying_caption_options(plan: Any) -> list[str]:
    """``"option in folder"`` for every subset with items whose captions vary between steps.

    Args:
        plan (`DatasetPlan`): the run's dataset plan.

    Returns:
        `list[str]`: e.g. ``["shuffle_caption in 10_zqx"]``; empty when every caption is fixed.
    """
    from ..data.captions import CaptionOptions

    found = []
    for index in sorted({item.subset for item in plan.items}):
        subset = plan.subsets[index]
        options = CaptionOptions.from_values(subset.values)
        on = [name for name in VARYING_CAPTION_OPTIONS if getattr(options, name)]
        if on:
            where = Path(str(subset.image_dir or "")).name or f"subset {index + 1}"
            found.append(f"{', '.join(on)} in {where}")
    return found


class CachedConditioning:
    """:class:`TextConditioner` outputs computed once per distinct caption (``cache_text_encoder_outputs``).

    Same ``encode`` as the conditioner, so the loop does not know the difference; the entries live in
    RAM (CPU) in the dtype the encoder produced them in, and only a batch's rows go to the device.

    Args:
        entries (`dict`): caption → (hidden ``[L, D]``, pooled ``[P]`` or ``None``).
    """

    def __init__(self, entries: dict[str, tuple[torch.Tensor, torch.Tensor | None]]) -> None:
        self.entries = entries

    @classmethod
    def build(cls, conditioner: TextConditioner, captions: Sequence[str], device: torch.device, autocast: Any,
              tick: Any = None, batch: int = 8) -> CachedConditioning:
        """Encode every distinct caption once (no gradients), ``batch`` at a time.

        Args:
            conditioner (`TextConditioner`): the encoders (already on ``device``).
            captions (`Sequence[str]`): processed captions (repeats are encoded once).
            device (`torch.device`): where the encoders are.
            autocast (`Callable`): the run's autocast context factory (the same numerics as the loop).
            tick (`Callable`, *optional*): called with the number of captions done per batch.
            batch (`int`, defaults to 8): captions per forward.
        """
        distinct = list(dict.fromkeys(captions))
        entries: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
        for start in range(0, len(distinct), batch):
            chunk = distinct[start : start + batch]
            with torch.no_grad(), autocast():
                hidden, pooled = conditioner.encode(chunk, device)
            for k, caption in enumerate(chunk):
                entries[caption] = (hidden[k].cpu(), pooled[k].cpu() if pooled is not None else None)
            if tick is not None:
                tick(len(chunk))
        return cls(entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def nbytes(self) -> int:
        """RAM the cache holds."""
        return sum(h.numel() * h.element_size() + (p.numel() * p.element_size() if p is not None else 0)
                   for h, p in self.entries.values())

    def encode(self, captions: Sequence[str], device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The cached conditioning of a batch (see :meth:`TextConditioner.encode`)."""
        try:
            rows = [self.entries[c] for c in captions]
        except KeyError as exc:
            raise RuntimeError(f"caption {exc.args[0]!r} was not cached before training; captions must not change "
                               "between steps with cache_text_encoder_outputs") from None
        hidden = torch.stack([h for h, _ in rows]).to(device)
        pooled = torch.stack([p for _, p in rows]).to(device) if rows[0][1] is not None else None
        return hidden, pooled
