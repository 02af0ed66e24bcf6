"""Split a caption into tags and join tags back into a caption.

A caption is Danbooru-style text: tags separated by commas. Files in the wild also use newlines
as separators (the Dataset Tag Editor turns newlines into commas on load), and kohya's
``keep_tokens_separator`` (``|||`` by convention) marks the fixed part of a caption:
``CharaA, OutfitB, ||| red_eyes, black_hair`` keeps ``CharaA, OutfitB`` in place under shuffle and
tag dropout (kohya ``train_util.process_caption``: fixed ``|||`` flexible ``|||`` fixed suffix).

Here the separator is kept as its own item, :data:`KEEP`, in the tag list, wherever it stood and
whether or not commas surround it, so edits can respect it and :func:`join_tags` can put it back.
A backslash-escaped comma (``\\,``) does not split; escaped parentheses (``\\(``, ``\\)``) are left
exactly as written (see :mod:`.normalize` to add or remove them).

:func:`join_tags` writes the clean form: ``", "`` between tags, the separator as
``"a, ||| b"``, no trailing newline. ``join_tags(split_tags(c)) == c`` for every clean caption.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

KEEP = "|||"
"""kohya's conventional ``keep_tokens_separator``; an item of its own in a parsed tag list."""

_SEPARATORS = re.compile(r"(\|\|\|)|(?<!\\)[,\r\n]")


def split_tags(caption: str) -> list[str]:
    """Split a caption into its tags, in order.

    Commas, newlines and carriage returns separate tags; whitespace around each tag is dropped,
    and so are empty items (``"a,, b,"`` has two tags). Every ``|||`` becomes a :data:`KEEP` item.
    Nothing else is changed: case, underscores and escapes stay as written.

    Args:
        caption (`str`): the caption text (a whole ``.txt`` file).

    Returns:
        `list[str]`: the tags, with :data:`KEEP` items where the caption had ``|||``.
    """
    if "|||" not in caption and "\\" not in caption:
        # Fast path for the common case (no separator marker, no escapes).
        if "\n" in caption or "\r" in caption:
            caption = caption.replace("\r", ",").replace("\n", ",")
        return [t for t in map(str.strip, caption.split(",")) if t]
    tags: list[str] = []
    parts = _SEPARATORS.split(caption)
    # re.split with one group: text, group, text, group, ..., text (group is None for , \n \r).
    for i, part in enumerate(parts):
        if i % 2:
            if part is not None:
                tags.append(KEEP)
        else:
            text = part.strip()
            if text:
                tags.append(text)
    return tags


def join_tags(tags: Iterable[str]) -> str:
    """Join tags into the clean caption form.

    Tags are joined with ``", "``; a :data:`KEEP` item is written as ``", ||| "`` between tags
    (``"a, ||| b"``), ``"||| b"`` at the start and ``"a, |||"`` at the end. Empty tags are skipped.

    Args:
        tags (`Iterable[str]`): tags as returned by :func:`split_tags` or an edit.

    Returns:
        `str`: the caption text, without a trailing newline.
    """
    if not isinstance(tags, list):
        tags = list(tags)
    if KEEP not in tags and "" not in tags:
        return ", ".join(tags)
    out: list[str] = []
    after_keep = False
    for tag in tags:
        if not tag:
            continue
        if out:
            out.append(" " if after_keep else ", ")
        out.append(tag)
        after_keep = tag == KEEP
    return "".join(out)


def partition(tags: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """Split a tag list into kohya's fixed head, flexible body and fixed tail.

    Without :data:`KEEP` the whole list is the body. With one, the head is what stands before it.
    With two or more, the tail is what stands after the last one (kohya splits on the first two;
    a third separator is flagged by :func:`~.stats.caption_flags`). The :data:`KEEP` items
    themselves are in none of the three lists; :func:`unpartition` puts them back.

    Args:
        tags (`Sequence[str]`): a parsed caption.

    Returns:
        `tuple[list[str], list[str], list[str]]`: ``(head, body, tail)``. ``body`` keeps any
        separators beyond the second.
    """
    first = _index(tags, KEEP)
    if first < 0:
        return [], list(tags), []
    last = len(tags) - 1 - _index(tags[::-1], KEEP)
    if last == first:
        return list(tags[:first]), list(tags[first + 1 :]), []
    return list(tags[:first]), list(tags[first + 1 : last]), list(tags[last + 1 :])


def unpartition(tags: Sequence[str], head: list[str], body: list[str], tail: list[str]) -> list[str]:
    """Rebuild a tag list from :func:`partition` parts, keeping the separators ``tags`` had.

    Args:
        tags (`Sequence[str]`): the list that was partitioned (only its separator count is used).
        head, body, tail (`list[str]`): the (edited) parts.

    Returns:
        `list[str]`: ``body`` alone, ``head + [KEEP] + body``, or ``head + [KEEP] + body + [KEEP] + tail``.
    """
    count = sum(1 for t in tags if t == KEEP)
    if count == 0:
        return list(body)
    if count == 1:
        return [*head, KEEP, *body]
    return [*head, KEEP, *body, KEEP, *tail]


def fixed_mask(tags: Sequence[str]) -> list[bool]:
    """Which items are fixed: the head, the tail and the :data:`KEEP` items themselves.

    Heuristic edits (rules, normalising, sorting) leave fixed items alone by default: that is
    where triggers live.

    Args:
        tags (`Sequence[str]`): a parsed caption.

    Returns:
        `list[bool]`: one flag per item; all False when there is no separator.
    """
    if KEEP not in tags:
        return [False] * len(tags)
    first = _index(tags, KEEP)
    last = len(tags) - 1 - _index(tags[::-1], KEEP)
    mask = [i <= first or (last != first and i >= last) for i in range(len(tags))]
    for i, tag in enumerate(tags):
        if tag == KEEP:
            mask[i] = True
    return mask


def _index(seq: Sequence[str], item: str) -> int:
    try:
        return seq.index(item)
    except ValueError:
        return -1
