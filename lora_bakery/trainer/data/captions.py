"""Caption files and kohya's per-sample caption processing, in kohya's exact order.

Source: ``BaseDataset.process_caption`` and ``DreamBoothDataset.read_caption`` in
SD:library/train_util.py (reference/kohya-trainer.md §5). The order is:

1. prefix/suffix joined with a space (so they take part in the shuffle),
2. whole-caption dropout (rate, or every N-th epoch),
3. wildcards (``enable_wildcard``) or else the first line only,
4. token operations, only when shuffle, token warmup or tag dropout is on:
   split on ``keep_tokens_separator`` (fixed | flexible | fixed suffix) or keep the first
   ``keep_tokens`` tags; token warmup on the flexible tags; shuffle them; drop each with
   ``caption_tag_dropout_rate``; join everything with ``", "``,
5. the secondary separator replaced by the caption separator.

Which line of a caption file is trained is one rule, :func:`split_trained_line`: kohya reads the file
with ``readlines()`` (universal newlines: ``\\n``, ``\\r\\n``, ``\\r``) and keeps line 1. The Dataset tab's
caption operations, the tagger's caption writing and the scan use the same function, so an edit lands
on the line the trainer reads and every other line stays byte for byte.

Randomness comes from a ``random.Random`` passed in, drawn in the same sequence kohya draws from
the global ``random`` module, so a seeded run is reproducible (and resumable) sample by sample.
Pure Python: no torch, no numpy.

One departure: kohya splits on ``keep_tokens_separator`` only inside step 4, so with shuffle, warmup
and tag dropout all off the literal separator (``|||``, which the Dataset tab's add-triggers writes)
is tokenized as text. Here a caption holding the separator is always split and joined, so the
separator never reaches the text encoder; captions without it are untouched, as in kohya.
"""

from __future__ import annotations

import math
import os
import random
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any


class CaptionError(ValueError):
    """A caption file that cannot be used; the message names the file."""


#: Line breaks as Python's text mode reads them (``open(..., "rt").readlines()``, what kohya calls).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def caption_lines(text: str) -> list[str]:
    """The lines of a caption file's text as kohya's ``readlines()`` sees them (no line ends kept).

    Only ``\\n``, ``\\r\\n`` and ``\\r`` end a line (``str.splitlines`` would also split on form
    feeds, ``\\x1c``-``\\x1e``, NEL and U+2028, which kohya keeps inside the line).
    """
    if not text:
        return []
    lines = _LINE_BREAK.split(text)
    return lines[:-1] if lines[-1] == "" else lines


def split_trained_line(text: str) -> tuple[str, str]:
    """``(line 1, the rest)`` of a caption file's text: line 1 is what kohya trains (wildcards off).

    ``line + rest == text`` always: the rest starts with line 1's own line break, so writing
    ``join_trained_line(edited, rest)`` back changes line 1 only and keeps every other byte.

    Args:
        text (`str`): the whole caption file, decoded.

    Returns:
        `tuple[str, str]`: line 1 exactly as written (not stripped) and everything after it.
    """
    m = _LINE_BREAK.search(text)
    return (text, "") if m is None else (text[: m.start()], text[m.start():])


def join_trained_line(line: str, rest: str) -> str:
    """The caption file's text with line 1 replaced by ``line`` (inverse of :func:`split_trained_line`).

    Raises:
        ValueError: ``line`` holds a line break (it would push text into lines the trainer ignores).
    """
    if _LINE_BREAK.search(line):
        raise ValueError(f"the trained caption line cannot hold a line break: {line!r}")
    return line + rest


@dataclass(frozen=True)
class CaptionOptions:
    """The subset options that shape a caption (kohya names and defaults, except the separator: ``"|||"``)."""

    caption_prefix: str | None = None
    caption_suffix: str | None = None
    caption_dropout_rate: float = 0.0
    caption_dropout_every_n_epochs: int = 0
    enable_wildcard: bool = False
    shuffle_caption: bool = False
    caption_separator: str = ","
    keep_tokens: int = 0
    keep_tokens_separator: str = "|||"
    token_warmup_min: int = 1
    token_warmup_step: float = 0.0
    caption_tag_dropout_rate: float = 0.0
    secondary_separator: str | None = None

    @classmethod
    def from_values(cls, values: Any) -> CaptionOptions:
        """Build from a resolved subset (or any object/dict with the kohya key names)."""
        get = values.get if isinstance(values, dict) else lambda k, d=None: getattr(values, k, d)
        kwargs = {}
        for f in fields(cls):
            v = get(f.name, None)
            if v is not None:
                kwargs[f.name] = v
        return cls(**kwargs)


def _apply_wildcards(caption: str, rng: random.Random) -> str:
    # kohya: a random line, then each {a|b} resolved; {{ and }} escape literal braces.
    if "\n" in caption:
        caption = rng.choice(caption.split("\n"))
    open_mark, close_mark = "⦅", "⦆"
    while open_mark in caption or close_mark in caption:
        open_mark += "⦅"
        close_mark += "⦆"
    caption = caption.replace("{{", open_mark).replace("}}", close_mark)
    caption = re.sub(r"\{([^}]+)\}", lambda m: rng.choice(m.group(1).split("|")), caption)
    return caption.replace(open_mark, "{").replace(close_mark, "}")


def warmup_steps(opts: CaptionOptions, max_train_steps: int) -> int:
    """``token_warmup_step`` as a step count: below 1 it is a fraction of all steps (floored)."""
    if opts.token_warmup_step < 1:
        return math.floor(opts.token_warmup_step * max_train_steps)
    return int(opts.token_warmup_step)


def process_caption(
    caption: str,
    opts: CaptionOptions,
    rng: random.Random,
    *,
    epoch: int = 1,
    step: int = 0,
    max_train_steps: int = 0,
) -> str:
    """One sample's caption after kohya's processing (see the module docstring for the order).

    Args:
        caption (`str`): the caption as read from the file (all lines when wildcards are on).
        opts (`CaptionOptions`): the subset's options.
        rng (`random.Random`): the sample's random source.
        epoch (`int`, *optional*): the current epoch, counted from 1 as kohya does (dropout every N epochs).
        step (`int`, *optional*): the current optimizer step (token warmup).
        max_train_steps (`int`, *optional*): all steps of the run (fractional token warmup).

    Returns:
        `str`: the caption to tokenize.
    """
    # 1. prefix / suffix
    if opts.caption_prefix:
        caption = opts.caption_prefix + " " + caption
    if opts.caption_suffix:
        caption = caption + " " + opts.caption_suffix

    # 2. whole-caption dropout (the random draw happens only when a rate is set, as in kohya)
    drop = opts.caption_dropout_rate > 0 and rng.random() < opts.caption_dropout_rate
    every = opts.caption_dropout_every_n_epochs
    if drop or (every > 0 and epoch % every == 0):
        return ""

    # 3. wildcards, or the first line only
    caption = _apply_wildcards(caption, rng) if opts.enable_wildcard else caption.split("\n")[0]

    # 4. token operations
    sep = opts.caption_separator
    keep_sep = opts.keep_tokens_separator
    token_ops = opts.shuffle_caption or opts.token_warmup_step > 0 or opts.caption_tag_dropout_rate > 0
    if token_ops or (keep_sep and keep_sep in caption):
        fixed: list[str] = []
        suffix: list[str] = []
        if keep_sep and keep_sep in caption:
            fixed_part, flex_part = caption.split(keep_sep, 1)
            if keep_sep in flex_part:
                flex_part, suffix_part = flex_part.split(keep_sep, 1)
                suffix = [t.strip() for t in suffix_part.split(sep) if t.strip()]
            fixed = [t.strip() for t in fixed_part.split(sep) if t.strip()]
            flex = [t.strip() for t in flex_part.split(sep) if t.strip()]
        else:
            tokens = [t.strip() for t in caption.strip().split(sep)]
            flex = tokens[:]
            if opts.keep_tokens > 0:
                fixed = flex[: opts.keep_tokens]
                flex = tokens[opts.keep_tokens :]

        warmup = warmup_steps(opts, max_train_steps)
        if warmup and step < warmup:
            keep = math.floor(step * ((len(flex) - opts.token_warmup_min) / warmup)) + opts.token_warmup_min
            flex = flex[:keep]

        if opts.shuffle_caption:
            rng.shuffle(flex)
        if opts.caption_tag_dropout_rate > 0:
            flex = [t for t in flex if rng.random() >= opts.caption_tag_dropout_rate]
        caption = ", ".join(fixed + flex + suffix)

    # 5. secondary separator
    if opts.secondary_separator:
        caption = caption.replace(opts.secondary_separator, sep)
    return caption


def caption_candidates(image: str | os.PathLike, extension: str) -> list[Path]:
    """Where kohya looks for an image's caption: ``<stem><ext>``, then the stem without a face suffix.

    kohya's face-crop naming appends ``_cx_cy_w_h``; the fallback drops the last four ``_`` parts.
    """
    base = os.path.splitext(os.fspath(image))[0]
    paths = [Path(base + extension)]
    parts = base.split("_")
    if len(parts) >= 5:
        alt = Path("_".join(parts[:-4]) + extension)
        if alt != paths[0]:
            paths.append(alt)
    return paths


def read_caption(
    image: str | os.PathLike, extension: str = ".txt", *, enable_wildcard: bool = False
) -> str | None:
    """The caption for ``image`` as kohya reads it, or ``None`` when there is no (non-empty) caption file.

    Only the first line is kept, unless wildcards are on (then all non-empty lines, joined by newlines).

    Args:
        image (`str | os.PathLike`): the image file.
        extension (`str`, *optional*): the caption extension, with its dot.
        enable_wildcard (`bool`, *optional*): keep every line.

    Returns:
        `str | None`: the caption text, or ``None`` for no file or an empty one.

    Raises:
        CaptionError: the file is not UTF-8 text (the message names it).
    """
    for path in caption_candidates(image, extension):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as exc:
            raise CaptionError(
                f"{path}: not UTF-8 text (byte {exc.start}); rewrite it as UTF-8 with the caption operation "
                f"'rewrite-utf8' (Dataset tab, or bakery dataset captions ROOT rewrite-utf8 --apply)"
            ) from None
        lines = caption_lines(text)
        if not lines or not "".join(lines).strip():
            return None
        if enable_wildcard:
            return "\n".join(line.strip() for line in lines if line.strip())
        return lines[0].strip()
    return None


def tag_frequency(captions: list[str], separator: str = ",") -> dict[str, int]:
    """kohya's ``ss_tag_frequency`` counts for one folder: raw captions split, stripped, lowercased.

    Counts are per image (not multiplied by repeats); empty tags are left out.
    """
    counts: dict[str, int] = {}
    for caption in captions:
        for tag in caption.split(separator):
            tag = tag.strip().lower()
            if tag:
                counts[tag] = counts.get(tag, 0) + 1
    return counts
