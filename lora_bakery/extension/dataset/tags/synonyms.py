"""Synonyms: one spelling per concept (lora-baking-guide "Cleaning > Synonyms").

Two kinds, both user-editable (:class:`~.defaults.SynonymTable`, defaults in
``data/synonyms.json``):

- aliases: spellings always replaced by the canonical tag (``blond_hair`` → ``blonde_hair``),
  like Danbooru's tag aliases;
- pick-one groups: near-synonyms taggers emit together (``tiara``/``circlet``). Where a caption
  has several, one is kept: the group's preferred tag, else the one most frequent in the dataset.
  A caption with only one of them is left alone: they are not the same thing, only confusable.
"""

from __future__ import annotations

from collections.abc import Sequence

from lora_bakery.extension.dataset.tags.defaults import SynonymTable, synonym_table
from lora_bakery.extension.dataset.tags.normalize import (
    escape_parens,
    spaces_to_underscores,
    tag_key,
    underscores_to_spaces,
)
from lora_bakery.extension.dataset.tags.rules import Rule, count_rules, vocabulary


def spell_like(tag: str, example: str) -> str:
    """Write ``tag`` in the style of ``example``: spaces or underscores, escaped parentheses.

    Args:
        tag (`str`): the tag to respell (e.g. the canonical ``blonde_hair``).
        example (`str`): a tag from the dataset (e.g. ``blond hair``).

    Returns:
        `str`: ``blonde hair`` for that example.
    """
    out = tag
    if " " in example.strip() and "_" not in example:
        out = underscores_to_spaces(out)
    elif "_" in example and " " not in example.strip():
        out = spaces_to_underscores(out)
    if "\\(" in example or "\\)" in example:
        out = escape_parens(out)
    return out


def synonym_rules(tag_lists: Sequence[Sequence[str]], table: SynonymTable | None = None) -> list[Rule]:
    """Rules for aliases and pick-one groups found in the dataset.

    Args:
        tag_lists (`Sequence[Sequence[str]]`): the parsed captions (iterated twice).
        table (`SynonymTable`, *optional*): the table; defaults to :func:`~.defaults.synonym_table`.

    Returns:
        `list[Rule]`: ``alias`` rules (``remove=(variant,), add=canonical``) and ``pick_one``
        rules (``remove=(other,), requires=(kept,)``), with counts, most frequent first.
    """
    table = synonym_table() if table is None else table
    vocab = vocabulary(tag_lists)
    by_key: dict[str, list[str]] = {}
    for tag in vocab:
        by_key.setdefault(tag_key(tag), []).append(tag)
    rules: list[Rule] = []
    for canonical, variants in table.aliases.items():
        for variant in variants:
            if tag_key(variant) == tag_key(canonical):
                continue
            for tag in by_key.get(tag_key(variant), ()):
                target = spell_like(canonical, tag)
                reason = f"{tag} is another spelling of {target}"
                rules.append(Rule((tag,), add=target, kind="alias", reason=reason))
    for index, group in enumerate(table.pick_one):
        present = [k for k in dict.fromkeys(tag_key(t) for t in group) if k in by_key]
        if len(present) < 2:
            continue
        counts = {k: sum(vocab[t] for t in by_key[k]) for k in present}
        prefer = table.prefer.get(index)
        if prefer is not None and tag_key(prefer) in counts:
            keep = tag_key(prefer)
            why = "preferred"
        else:
            keep = max(present, key=lambda k: counts[k])
            why = f"more frequent: {counts[keep]} captions"
        kept_tags = by_key[keep]
        for other in present:
            if other == keep:
                continue
            for tag in by_key[other]:
                for kept in kept_tags:
                    reason = f"{tag} and {kept} are near-synonyms; keeping {kept} ({why})"
                    rules.append(Rule((tag,), requires=(kept,), kind="pick_one", reason=reason))
    return count_rules(rules, tag_lists)
