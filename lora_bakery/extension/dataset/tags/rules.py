"""Rules: dataset-level proposals (remove, replace, merge) the user reviews before applying.

Consolidation, synonyms, pruning and the useless list never edit captions directly. Each looks
at the dataset and returns :class:`Rule` objects: "drop ``shirt`` where ``white_shirt`` is
present (37 captions)", with a reason. The UI lists them with their counts; the user unticks
what they disagree with; :func:`apply_rules` turns the accepted ones into one
:data:`~.edit.TagOp`, previewed caption by caption with :func:`~.batch.apply_to_dataset`.

Rules compare exact tag text: they are built from the tags the dataset actually contains.
Conditions are checked against the caption as it was before the rules ran, so the order of the
rules never matters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from lora_bakery.extension.dataset.tags.edit import TagOp
from lora_bakery.extension.dataset.tags.normalize import tag_key
from lora_bakery.extension.dataset.tags.parse import KEEP, fixed_mask


@dataclass(frozen=True)
class Rule:
    """One proposed change, applied to every caption that meets its condition.

    A rule fires on a caption that holds every tag in ``remove`` and ``requires`` and none in
    ``unless``. It then deletes the ``remove`` tags and, when ``add`` is set, puts ``add`` where
    the earliest of them stood in that caption (unless the caption already has it).

    Attributes:
        remove (`tuple[str, ...]`): tags deleted (exact text).
        add (`str` or `None`): the tag that replaces them; None for a pure removal.
        requires (`tuple[str, ...]`): other tags that must be present (kept).
        unless (`tuple[str, ...]`): the rule is skipped when any of these is present.
        kind (`str`): where it came from: ``useless``, ``trait``, ``outfit``, ``redundant``,
            ``specialize``, ``alias``, ``pick_one``, ``merge`` …
        reason (`str`): one sentence for the preview.
        count (`int`): captions it fires on (filled by :func:`count_rules`).
    """

    remove: tuple[str, ...]
    add: str | None = None
    requires: tuple[str, ...] = ()
    unless: tuple[str, ...] = ()
    kind: str = ""
    reason: str = ""
    count: int = 0
    _needs: frozenset[str] = field(init=False, repr=False, compare=False)
    _blocks: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_needs", frozenset(self.remove) | frozenset(self.requires))
        object.__setattr__(self, "_blocks", frozenset(self.unless))

    def fires(self, present: set[str] | frozenset[str]) -> bool:
        """Whether the rule applies to a caption whose (exact) tags are ``present``.

        Args:
            present (`set[str]`): the caption's tags.

        Returns:
            `bool`: True when it fires.
        """
        return self._needs <= present and self._blocks.isdisjoint(present)

    def describe(self) -> str:
        """A short human form: ``shirt → (removed) where white_shirt``."""
        left = ", ".join(self.remove)
        right = self.add if self.add is not None else "(removed)"
        cond = f" where {', '.join(self.requires)}" if self.requires else ""
        cond += f" unless {', '.join(self.unless)}" if self.unless else ""
        return f"{left} → {right}{cond}"


def vocabulary(tag_lists: Iterable[Sequence[str]], skip_fixed: bool = True) -> dict[str, int]:
    """Every distinct tag (exact text) and the number of captions holding it.

    Args:
        tag_lists (`Iterable[Sequence[str]]`): the parsed captions.
        skip_fixed (`bool`, *optional*, defaults to True): ignore the part before ``|||``
            (triggers), as rules do.

    Returns:
        `dict[str, int]`: tag → caption count, in first-seen order; ``|||`` excluded.
    """
    counts: dict[str, int] = {}
    for tags in tag_lists:
        mask = fixed_mask(tags) if skip_fixed and KEEP in tags else None
        seen: set[str] = set()
        for i, t in enumerate(tags):
            if t == KEEP or t in seen or (mask is not None and mask[i]):
                continue
            seen.add(t)
            counts[t] = counts.get(t, 0) + 1
    return counts


def _index(rules: Iterable[Rule]) -> dict[str, list[Rule]]:
    by_tag: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.remove:
            by_tag.setdefault(rule.remove[0], []).append(rule)
    return by_tag


def rules_fired(rules: Sequence[Rule], tags: Sequence[str], skip_fixed: bool = True) -> list[Rule]:
    """The rules that fire on one caption (for a per-image "why" in the preview).

    Args:
        rules (`Sequence[Rule]`): the rules.
        tags (`Sequence[str]`): a parsed caption.
        skip_fixed (`bool`, *optional*, defaults to True): tags before ``|||`` do not count.

    Returns:
        `list[Rule]`: the rules that fire, in ``rules`` order.
    """
    present = _present(tags, skip_fixed)
    return [r for r in rules if r.remove and r.fires(present)]


def _present(tags: Sequence[str], skip_fixed: bool) -> set[str]:
    if skip_fixed and KEEP in tags:
        mask = fixed_mask(tags)
        return {t for t, fixed in zip(tags, mask) if not fixed}
    return set(tags)


def apply_rules(rules: Iterable[Rule], skip_fixed: bool = True, protect: Iterable[str] = ()) -> TagOp:
    """Turn accepted rules into one operation.

    Args:
        rules (`Iterable[Rule]`): the rules the user kept.
        skip_fixed (`bool`, *optional*, defaults to True): never touch the part before ``|||``
            (and after a second one), where triggers live.
        protect (`Iterable[str]`, *optional*): tags never removed (triggers), compared by key.

    Returns:
        `TagOp`: the operation.
    """
    by_tag = _index(rules)
    protected = {tag_key(t) for t in protect}

    def run(tags: list[str]) -> list[str]:
        present = _present(tags, skip_fixed)
        fired = [r for t in present if t in by_tag for r in by_tag[t] if r.fires(present)]
        if protected:
            fired = [r for r in fired if not any(tag_key(t) in protected for t in r.remove)]
        if not fired:
            return list(tags)
        fixed = fixed_mask(tags) if skip_fixed and KEEP in tags else None
        removed: set[str] = set()
        additions: dict[str, list[str]] = {}  # anchor tag -> tags added in its place
        position: dict[str, int] | None = None
        for rule in fired:
            removed.update(rule.remove)
            if rule.add is not None:
                if position is None:
                    position = {}
                    for i, t in enumerate(tags):
                        if fixed is None or not fixed[i]:
                            position.setdefault(t, i)
                # The added tag takes the place of the earliest removed tag in this caption.
                anchor = min(rule.remove, key=position.__getitem__)
                additions.setdefault(anchor, []).append(rule.add)
        out: list[str] = []
        for i, t in enumerate(tags):
            if t not in removed or (fixed is not None and fixed[i]):
                out.append(t)
            elif additions:
                out.extend(additions.pop(t, ()))
        if position is None:
            return out
        # An added tag the caption already had (or that two rules both added) appears once.
        added = {r.add for r in fired if r.add is not None}
        seen: set[str] = set()
        result = []
        for t in out:
            if t in added:
                if t in seen:
                    continue
                seen.add(t)
            result.append(t)
        return result

    return run


def count_rules(
    rules: Iterable[Rule], tag_lists: Iterable[Sequence[str]], skip_fixed: bool = True
) -> list[Rule]:
    """Fill in :attr:`Rule.count` (captions each rule fires on); rules that never fire are dropped.

    Args:
        rules (`Iterable[Rule]`): the rules.
        tag_lists (`Iterable[Sequence[str]]`): the parsed captions (the filtered set, if any).
        skip_fixed (`bool`, *optional*, defaults to True): as in :func:`apply_rules`.

    Returns:
        `list[Rule]`: rules with counts, most frequent first (stable for equal counts).
    """
    rule_list = list(rules)
    by_tag = _index(rule_list)
    counts = [0] * len(rule_list)
    position = {id(r): i for i, r in enumerate(rule_list)}
    for tags in tag_lists:
        present = _present(tags, skip_fixed)
        for t in present:
            for r in by_tag.get(t, ()):
                if r.fires(present):
                    counts[position[id(r)]] += 1
    counted = [replace(r, count=c) for r, c in zip(rule_list, counts) if c]
    return sorted(counted, key=lambda r: -r.count)
