"""Tag patterns: exact names, ``*`` globs and ``re:`` regular expressions.

One small syntax for every list the user edits (remove, filter, useless, prune lists):

- ``long_hair``: that tag, compared by :func:`~.normalize.tag_key` (so ``long hair`` and
  ``Long_Hair`` match too). Characters such as ``?`` and ``[`` are literal: ``?`` and ``!?`` are
  real Danbooru tags.
- ``*_redraw_challenge_(meme)``: a glob only when it contains ``*`` (any run of characters),
  also compared by key.
- ``re:^.+:.+$``: a Python regular expression, case-insensitive, that must match the whole tag as
  written or its key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from lora_bakery.extension.dataset.tags.normalize import tag_key
from lora_bakery.extension.dataset.tags.parse import KEEP

REGEX_PREFIX = "re:"


class Memo(dict):
    """A dict that fills itself: ``memo[x] == fn(x)``, computed once per distinct ``x``.

    Subscripting a dict is a C call, so hot loops over 100,000 captions (whose tags repeat)
    avoid a Python function call per tag. Cleared when it grows past ``limit`` entries.
    """

    def __init__(self, fn, limit: int = 200_000) -> None:
        super().__init__()
        self.fn = fn
        self.limit = limit

    def __missing__(self, key):
        if len(self) > self.limit:
            self.clear()
        value = self[key] = self.fn(key)
        return value


class PatternError(ValueError):
    """A pattern that cannot be compiled; the message names the pattern."""


@dataclass
class TagMatcher:
    """A compiled list of patterns; :meth:`matches` says whether a tag matches any of them.

    Build it with :func:`compile_patterns`. Results are cached per tag, so matching the same
    vocabulary across 100,000 captions costs one check per distinct tag.
    """

    exact: dict[str, str]  # key -> pattern as written
    compiled: list[tuple[str, re.Pattern[str], bool]]  # (pattern, regex, also try the raw tag)
    patterns: tuple[str, ...]
    memo: Memo = field(init=False, repr=False)
    """``memo[tag]`` is :meth:`which` of ``tag``, memoised (for hot loops)."""

    def __post_init__(self) -> None:
        self.memo = Memo(lambda tag: None if tag == KEEP else self._find(tag))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, tag: str) -> bool:
        """Whether ``tag`` matches any pattern (:data:`~.parse.KEEP` never does).

        Args:
            tag (`str`): one tag.

        Returns:
            `bool`: True on a match.
        """
        return self.which(tag) is not None

    def which(self, tag: str) -> str | None:
        """The first pattern that matches ``tag``, for reasons shown in previews.

        Exact names are checked before globs and regexes.

        Args:
            tag (`str`): one tag.

        Returns:
            `str` or `None`: the pattern as the user wrote it, or None.
        """
        return self.memo[tag]

    def _find(self, tag: str) -> str | None:
        key = tag_key(tag)
        hit = self.exact.get(key)
        if hit is not None:
            return hit
        for pattern, rx, raw in self.compiled:
            if rx.fullmatch(key) is not None or (raw and rx.fullmatch(tag) is not None):
                return pattern
        return None


def compile_patterns(patterns: Iterable[str]) -> TagMatcher:
    """Compile user patterns (exact, ``*`` glob, ``re:`` regex) into one :class:`TagMatcher`.

    Args:
        patterns (`Iterable[str]`): the patterns; blank ones are ignored.

    Returns:
        `TagMatcher`: the matcher.

    Raises:
        PatternError: a ``re:`` pattern is not a valid regular expression.
    """
    kept = tuple(p.strip() for p in patterns if p and p.strip())
    exact: dict[str, str] = {}
    compiled: list[tuple[str, re.Pattern[str], bool]] = []
    for p in kept:
        if p.startswith(REGEX_PREFIX):
            try:
                rx = re.compile(p[len(REGEX_PREFIX) :], re.IGNORECASE | re.DOTALL)
            except re.error as e:
                raise PatternError(f"Pattern {p!r} is not a valid regular expression: {e}") from None
            compiled.append((p, rx, True))
        elif "*" in p:
            body = ".*".join(re.escape(x) for x in tag_key(p).split("*"))
            compiled.append((p, re.compile(body, re.DOTALL), False))
        else:
            exact.setdefault(tag_key(p), p)
    return TagMatcher(exact, compiled, kept)


def filter_tags(tags: Sequence[str], matcher: TagMatcher) -> list[str]:
    """The tags of ``tags`` that match, in order.

    Args:
        tags (`Sequence[str]`): a parsed caption or a vocabulary.
        matcher (`TagMatcher`): from :func:`compile_patterns`.

    Returns:
        `list[str]`: the matching tags.
    """
    return [t for t in tags if matcher.matches(t)]
