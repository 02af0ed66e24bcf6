"""Caption edits as operations: functions from a tag list to a new tag list.

Each factory here returns a :data:`TagOp`, a plain function ``list[str] -> list[str]`` that never
changes its argument. :func:`~.batch.apply_to_dataset` runs one over every caption and reports only
the captions it changed; :func:`compose` chains several into one batch step.

Triggers go first, in the order given, followed by the keep-tokens separator ``|||`` when asked
(recipes.md "Captions and triggers"). Heuristic edits (respelling, sorting) leave the fixed part of
a caption (before ``|||``) alone; explicit edits (remove, replace) apply everywhere, because the
user named the tags.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from lora_bakery.extension.dataset.tags.match import REGEX_PREFIX, Memo, PatternError, compile_patterns
from lora_bakery.extension.dataset.tags.normalize import KEYS, normalize_tag, remove_duplicates, tag_key
from lora_bakery.extension.dataset.tags.parse import KEEP, fixed_mask, partition, split_tags, unpartition

TagOp = Callable[[list[str]], list[str]]
"""An edit: takes a parsed caption, returns the edited tag list (a new list)."""


def compose(*ops: TagOp) -> TagOp:
    """Chain operations left to right into one.

    Args:
        *ops (`TagOp`): the operations, applied in order.

    Returns:
        `TagOp`: their composition.
    """

    def run(tags: list[str]) -> list[str]:
        for op in ops:
            tags = op(tags)
        return tags

    return run


def _tag_list(tags: str | Iterable[str]) -> list[str]:
    """Accept ``"a, b"`` or ``["a", "b"]``; drop blanks and separators, de-duplicate."""
    items = split_tags(tags) if isinstance(tags, str) else [t.strip() for t in tags]
    return remove_duplicates([t for t in items if t and t != KEEP])


def add_triggers(triggers: str | Iterable[str], separator: bool = True) -> TagOp:
    """Put trigger tags at the front, in the given order, optionally followed by ``|||``.

    A trigger already in the caption (compared by :func:`~.normalize.tag_key`) is moved, not
    duplicated, and takes the spelling given here. With ``separator`` and no ``|||`` in the
    caption, one is inserted after the triggers; a caption that already has one keeps it, and the
    triggers join its fixed part. Applying the operation twice gives the same caption as once.

    Args:
        triggers (`str` or `Iterable[str]`): ``"CharaA, OutfitB"`` or a list.
        separator (`bool`, *optional*, defaults to True): insert the keep-tokens separator.

    Returns:
        `TagOp`: the operation (a no-op when ``triggers`` is empty).
    """
    trig = _tag_list(triggers)
    keys = {tag_key(t) for t in trig}

    def run(tags: list[str]) -> list[str]:
        if not trig:
            return list(tags)
        rest = [t for t in tags if KEYS[t] not in keys]  # KEYS["|||"] is "|||", never a trigger key
        if separator and KEEP not in rest:
            return [*trig, KEEP, *rest]
        return [*trig, *rest]

    return run


def remove_tags(patterns: str | Iterable[str]) -> TagOp:
    """Remove every tag that matches a pattern (exact, ``*`` glob or ``re:`` regex; see :mod:`.match`).

    Args:
        patterns (`str` or `Iterable[str]`): ``"meme, parody"`` or a list of patterns.

    Returns:
        `TagOp`: the operation. ``|||`` is never removed (see :func:`remove_separator`).

    Raises:
        PatternError: a regular expression does not compile.
    """
    items = [p.strip() for p in patterns.split(",")] if isinstance(patterns, str) else list(patterns)
    matcher = compile_patterns(items)

    hits = matcher.memo  # tag -> matching pattern or None (None for |||)

    def run(tags: list[str]) -> list[str]:
        return [t for t in tags if hits[t] is None]

    return run


def replace_tags(mapping: Mapping[str, str]) -> TagOp:
    """Replace tags: ``{"bow": "red_bowtie", "armor": "pauldron, gorget", "shiny_skin": ""}``.

    Keys are tag names (compared by :func:`~.normalize.tag_key`) or ``re:`` regular expressions
    matched against the whole tag, whose value may use groups (``{"re:(.+)_hair": "\\1 hair"}``).
    A value may hold several comma-separated tags (the replacement takes the original's place)
    or be empty (the tag is removed). A replacement that is already in the caption is not
    duplicated: the first occurrence stays.

    Args:
        mapping (`Mapping[str, str]`): old → new.

    Returns:
        `TagOp`: the operation.

    Raises:
        PatternError: a regular expression does not compile.
    """
    exact: dict[str, list[str]] = {}
    regexes: list[tuple[re.Pattern[str], str]] = []
    for old, new in mapping.items():
        if old.startswith(REGEX_PREFIX):
            try:
                regexes.append((re.compile(old[len(REGEX_PREFIX) :], re.IGNORECASE), new))
            except re.error as e:
                raise PatternError(f"Pattern {old!r} is not a valid regular expression: {e}") from None
        elif old.strip():
            exact[tag_key(old)] = _tag_list(new)

    def replacement(tag: str) -> list[str] | None:
        if tag == KEEP:
            return None
        found = exact.get(tag_key(tag))
        if found is None:
            for rx, template in regexes:
                m = rx.fullmatch(tag)
                if m is not None:
                    found = _tag_list(m.expand(template))
                    break
        return found

    memo = Memo(replacement)

    def run(tags: list[str]) -> list[str]:
        news = [memo[t] for t in tags]
        if news.count(None) == len(news):
            return list(tags)
        out: list[str] = []
        inserted: set[str] = set()
        changed = False
        for t, new in zip(tags, news):
            if new is None or new == [t]:
                out.append(t)
                continue
            changed = True
            out.extend(new)
            inserted.update(tag_key(n) for n in new)
        if not changed:
            return out
        # Drop later duplicates of what was inserted; other repeats are left to deduplicate().
        seen: set[str] = set()
        result = []
        for t in out:
            k = tag_key(t) if t != KEEP else KEEP
            if k in inserted and k in seen:
                continue
            seen.add(k)
            result.append(t)
        return result

    return run


def deduplicate(loose: bool = True) -> TagOp:
    """Remove repeated tags, keeping the first occurrence (see :func:`~.normalize.remove_duplicates`).

    Args:
        loose (`bool`, *optional*, defaults to True): ``long_hair`` and ``long hair`` are duplicates.

    Returns:
        `TagOp`: the operation.
    """
    return lambda tags: remove_duplicates(tags, loose)


def respell(
    underscores: str = "keep",
    escape: bool | None = None,
    lowercase: bool = False,
    dedupe: bool = True,
    skip_fixed: bool = True,
    protect: Iterable[str] = (),
) -> TagOp:
    """Normalise spelling (see :func:`~.normalize.normalize_tags`), then optionally de-duplicate.

    Args:
        underscores (`str`, *optional*, defaults to ``"keep"``): ``"spaces"`` (kaomoji kept),
            ``"underscores"`` or ``"keep"``.
        escape (`bool` or `None`, *optional*): escape (True) or unescape (False) parentheses.
        lowercase (`bool`, *optional*, defaults to False): lowercase tags.
        dedupe (`bool`, *optional*, defaults to True): drop duplicates the respelling reveals.
        skip_fixed (`bool`, *optional*, defaults to True): leave the part before ``|||`` alone.
        protect (`Iterable[str]`, *optional*): tags never respelled (triggers).

    Returns:
        `TagOp`: the operation.
    """
    protected = {tag_key(t) for t in protect}
    normalize_tag(KEEP, underscores)  # validate the mode now, not on the first caption
    cache: dict[str, str] = {}

    def spell(tag: str) -> str:
        try:
            return cache[tag]
        except KeyError:
            pass
        new = (
            tag
            if tag == KEEP or tag_key(tag) in protected
            else normalize_tag(tag, underscores, escape, lowercase)
        )
        if len(cache) > 200_000:
            cache.clear()
        cache[tag] = new
        return new

    def run(tags: list[str]) -> list[str]:
        if skip_fixed and KEEP in tags:
            out = [t if fixed else spell(t) for t, fixed in zip(tags, fixed_mask(tags))]
        else:
            out = [spell(t) for t in tags]
        return remove_duplicates(out) if dedupe else out

    return run


def sort_by_frequency(
    frequency: Mapping[str, int], triggers: str | Iterable[str] = (), skip_fixed: bool = True
) -> TagOp:
    """Sort tags by dataset frequency, most frequent first; ties in alphabetical order.

    Triggers stay first: the fixed part before ``|||`` (and after a second one) is not sorted,
    and without a separator the tags listed in ``triggers`` go first in that order. This avoids
    the Dataset Tag Editor trap where sorting moved the trigger (lora-baking-guide "Adding a
    trigger").

    Args:
        frequency (`Mapping[str, int]`): tag counts keyed by :func:`~.normalize.tag_key`, as from
            :func:`~.stats.tag_frequency` with ``loose=True``.
        triggers (`str` or `Iterable[str]`, *optional*): tags kept at the front.
        skip_fixed (`bool`, *optional*, defaults to True): False sorts the fixed parts as well.

    Returns:
        `TagOp`: the operation.
    """
    trig = _tag_list(triggers)
    order = {tag_key(t): i for i, t in enumerate(trig)}

    def rank_of(tag: str) -> tuple[int, str]:
        k = KEYS[tag]
        return -frequency.get(k, frequency.get(tag, 0)), k

    rank = Memo(rank_of).__getitem__

    def sort_runs(items: Sequence[str]) -> list[str]:
        # Sort each run between separators (only > 2 separators leave any in the body).
        out: list[str] = []
        run: list[str] = []
        for t in [*items, KEEP]:
            if t != KEEP:
                run.append(t)
                continue
            if order:
                first = sorted((x for x in run if KEYS[x] in order), key=lambda x: order[KEYS[x]])
                out.extend(first + sorted((x for x in run if KEYS[x] not in order), key=rank))
            else:
                out.extend(sorted(run, key=rank))
            out.append(KEEP)
            run = []
        return out[:-1]

    def run(tags: list[str]) -> list[str]:
        if not skip_fixed:
            return sort_runs(tags)
        head, body, tail = partition(tags)
        return unpartition(tags, head, sort_runs(body), tail)

    return run


def remove_separator() -> TagOp:
    """Remove every ``|||`` (the tags keep their order).

    Returns:
        `TagOp`: the operation.
    """
    return lambda tags: [t for t in tags if t != KEEP]
