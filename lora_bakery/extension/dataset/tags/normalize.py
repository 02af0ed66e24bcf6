"""Tag spelling: underscores or spaces, escaped parentheses, case, duplicates.

WD14 taggers emit Danbooru names with underscores (``long_hair``); the HF Space, dghs-imgutils and
the A1111 tagger replace them with spaces *except* for 19 kaomoji whose underscore is part of the
face (``^_^``, ``>_<`` …; reference/dataset-tools.md §1). Parentheses in tags (``name_(series)``)
mean attention weights in A1111 prompts, so many users escape them (``name_\\(series\\)``).

Both spellings of one tag should count as one tag when matching, counting and de-duplicating:
:func:`tag_key` is that comparison key (lowercase, spaces, parentheses unescaped). Every function
here is idempotent: normalising twice gives what normalising once gave.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from lora_bakery.extension.dataset.tags.parse import KEEP, fixed_mask

KAOMOJI = frozenset(
    {
        "0_0", "(o)_(o)", "+_+", "+_-", "._.", "<o>_<o>", "<|>_<|>", "=_=", ">_<", "3_3",
        "6_9", ">_o", "@_@", "^_^", "o_o", "u_u", "x_x", "|_|", "||_||",
    }
)  # fmt: skip
"""Tags whose underscore is kept when converting to spaces (SmilingWolf's HF Space list)."""

_SPACES = re.compile(r"\s+")
_UNESCAPED_PAREN = re.compile(r"(?<!\\)([()])")

UNDERSCORE_MODES = ("keep", "spaces", "underscores")


def unescape_parens(tag: str) -> str:
    """``name_\\(series\\)`` → ``name_(series)``.

    Args:
        tag (`str`): one tag.

    Returns:
        `str`: the tag with ``\\(`` and ``\\)`` turned into plain parentheses.
    """
    if "\\" not in tag:
        return tag
    return tag.replace("\\(", "(").replace("\\)", ")")


def escape_parens(tag: str) -> str:
    """``name_(series)`` → ``name_\\(series\\)``; already escaped parentheses stay as they are.

    Args:
        tag (`str`): one tag.

    Returns:
        `str`: the tag with every parenthesis preceded by one backslash.
    """
    if "(" not in tag and ")" not in tag:
        return tag
    return _UNESCAPED_PAREN.sub(r"\\\1", tag)


def is_kaomoji(tag: str) -> bool:
    """Whether ``tag`` is one of :data:`KAOMOJI` (escaped parentheses allowed).

    Args:
        tag (`str`): one tag.

    Returns:
        `bool`: True for ``^_^``, ``(o)_(o)``, ``\\(o\\)_\\(o\\)`` …
    """
    return unescape_parens(tag) in KAOMOJI


def underscores_to_spaces(tag: str) -> str:
    """``long_hair`` → ``long hair``, leaving kaomoji such as ``^_^`` untouched.

    Args:
        tag (`str`): one tag.

    Returns:
        `str`: the tag with underscores replaced by spaces unless it is a kaomoji.
    """
    if "_" not in tag or is_kaomoji(tag):
        return tag
    return tag.replace("_", " ")


def spaces_to_underscores(tag: str) -> str:
    """``long hair`` → ``long_hair`` (runs of whitespace become one underscore).

    Args:
        tag (`str`): one tag.

    Returns:
        `str`: the tag in Danbooru spelling.
    """
    return _SPACES.sub("_", tag.strip())


@lru_cache(maxsize=1 << 17)
def tag_key(tag: str) -> str:
    """The comparison key of a tag: lowercase, spaces for underscores, parentheses unescaped.

    ``Long_Hair``, ``long hair`` and ``long  hair`` share the key ``long hair``;
    ``name_\\(series\\)`` and ``name (series)`` share ``name (series)``. Kaomoji get a key like any
    other tag (``^_^`` → ``^ ^``): keys are for comparing, never written to files.

    Args:
        tag (`str`): one tag.

    Returns:
        `str`: the key.
    """
    return _SPACES.sub(" ", unescape_parens(tag).replace("_", " ")).strip().lower()


class _KeyCache(dict):
    """``KEYS[tag]`` is ``tag_key(tag)`` through a plain dict lookup (hot loops over 100k captions)."""

    def __missing__(self, tag: str) -> str:
        if len(self) > 500_000:
            self.clear()
        value = self[tag] = tag_key(tag)
        return value


KEYS: dict[str, str] = _KeyCache()
"""Memo of :func:`tag_key`: ``KEYS[tag]``. Faster than calling it in loops over whole datasets."""


def normalize_tag(
    tag: str,
    underscores: str = "keep",
    escape: bool | None = None,
    lowercase: bool = False,
) -> str:
    """Respell one tag.

    Args:
        tag (`str`): one tag.
        underscores (`str`, *optional*, defaults to ``"keep"``): ``"spaces"`` (kaomoji kept),
            ``"underscores"`` or ``"keep"``.
        escape (`bool` or `None`, *optional*): True escapes parentheses, False unescapes them,
            None leaves them.
        lowercase (`bool`, *optional*, defaults to False): lowercase the tag (before the kaomoji check,
            so ``X_X`` keeps its underscore as ``x_x``).

    Returns:
        `str`: the respelled tag, with runs of whitespace collapsed to one space.
    """
    if underscores not in UNDERSCORE_MODES:
        raise ValueError(f"underscores must be one of {UNDERSCORE_MODES}, not {underscores!r}")
    if tag == KEEP:
        return tag
    out = _SPACES.sub(" ", tag).strip()
    if lowercase:
        out = out.lower()
    if underscores == "spaces":
        out = underscores_to_spaces(out)
    elif underscores == "underscores":
        out = spaces_to_underscores(out)
    if escape is True:
        out = escape_parens(out)
    elif escape is False:
        out = unescape_parens(out)
    return out


def normalize_tags(
    tags: Sequence[str],
    underscores: str = "keep",
    escape: bool | None = None,
    lowercase: bool = False,
    skip_fixed: bool = True,
    protect: Iterable[str] = (),
) -> list[str]:
    """Respell every tag of a caption with :func:`normalize_tag`.

    Args:
        tags (`Sequence[str]`): a parsed caption.
        underscores, escape, lowercase: as in :func:`normalize_tag`.
        skip_fixed (`bool`, *optional*, defaults to True): leave the part before ``|||`` (and
            after a second ``|||``) alone, since triggers such as ``Yellow_short_Kimono`` live there.
        protect (`Iterable[str]`, *optional*): tags never respelled (compared by :func:`tag_key`).

    Returns:
        `list[str]`: a new list; duplicates created by respelling are not removed (see
        :func:`remove_duplicates`).
    """
    keep_keys = {tag_key(t) for t in protect}
    fixed = fixed_mask(tags) if skip_fixed else [False] * len(tags)
    return [
        t
        if fixed[i] or t == KEEP or (keep_keys and tag_key(t) in keep_keys)
        else normalize_tag(t, underscores, escape, lowercase)
        for i, t in enumerate(tags)
    ]


def remove_duplicates(tags: Sequence[str], loose: bool = True) -> list[str]:
    """Drop repeated tags, keeping the first occurrence and the order.

    Args:
        tags (`Sequence[str]`): a parsed caption.
        loose (`bool`, *optional*, defaults to True): compare by :func:`tag_key`, so
            ``long_hair`` and ``long hair`` are duplicates; False compares exact text.

    Returns:
        `list[str]`: a new list. :data:`~.parse.KEEP` items are never removed.
    """
    seen: set[str] = set()
    out: list[str] = []
    for t in tags:
        if t == KEEP:
            out.append(t)
            continue
        k = KEYS[t] if loose else t
        if k in seen:
            continue
        seen.add(k)
        out.append(t)
    return out


def duplicated(tags: Sequence[str], loose: bool = True) -> list[str]:
    """The tags that occur more than once (each listed once, first spelling, in order).

    Args:
        tags (`Sequence[str]`): a parsed caption.
        loose (`bool`, *optional*, defaults to True): compare by :func:`tag_key`.

    Returns:
        `list[str]`: the repeated tags, in order of first occurrence.
    """
    seen: dict[str, str] = {}
    dup: set[str] = set()
    for t in tags:
        if t == KEEP:
            continue
        k = tag_key(t) if loose else t
        if k in seen:
            dup.add(k)
        else:
            seen[k] = t
    return [t for k, t in seen.items() if k in dup]
