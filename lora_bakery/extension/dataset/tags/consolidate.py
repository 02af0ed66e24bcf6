"""Consolidation: fewer, more specific tags (``shirt, white_shirt`` → ``white_shirt``).

Three proposals, each a list of :class:`~.rules.Rule` with counts and reasons, never applied
silently (reference/dataset-tools.md §3 and §7):

- :func:`redundancy_rules`: DatasetHelpers' containment. A tag whose words appear, at word
  boundaries, inside another tag of the same caption is dropped (``long_hair, very_long_hair`` →
  ``very_long_hair``). ``match="suffix"`` restricts it to word suffixes (the implication form).
- :func:`specialize_rules`: suffix implication within the dataset's vocabulary. A generic tag
  standing alone (``shirt``) becomes the one more specific form the dataset uses
  (``white_shirt``), or the form the user picks (the guide's ``bow`` → ``red_bowtie``).
- :func:`merge_rules` (opt-in): DatasetHelpers' head-noun merge, ``white_dress, turtleneck_dress``
  → ``white_turtleneck_dress``, with hair, eye and other families protected and a deterministic
  word order (most frequent tag first) instead of DatasetHelpers' hash order.

Deny-lists come from ``data/consolidate.json`` (:func:`~.defaults.consolidate_defaults`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lora_bakery.extension.dataset.tags.defaults import ConsolidateDefaults, consolidate_defaults
from lora_bakery.extension.dataset.tags.match import compile_patterns
from lora_bakery.extension.dataset.tags.normalize import tag_key
from lora_bakery.extension.dataset.tags.rules import Rule, count_rules, vocabulary


def _by_key(vocab: Iterable[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for tag in vocab:
        out.setdefault(tag_key(tag), []).append(tag)
    return out


def contained(
    vocab: Iterable[str], match: str = "words", deny: ConsolidateDefaults | None = None
) -> dict[str, list[str]]:
    """For each tag, the other vocabulary tags found inside it at word boundaries.

    Args:
        vocab (`Iterable[str]`): distinct tags (exact text).
        match (`str`, *optional*, defaults to ``"words"``): ``"words"`` (any run of whole
            words, DatasetHelpers) or ``"suffix"`` (trailing words only: ``white_shirt`` ⊃
            ``shirt`` but not ``shirt_lift`` ⊃ ``shirt``).
        deny (`ConsolidateDefaults`, *optional*): deny-lists; defaults to the shipped ones.

    Returns:
        `dict[str, list[str]]`: specific tag → the generic tags it contains (only non-empty).
    """
    if match not in ("words", "suffix"):
        raise ValueError(f"match must be 'words' or 'suffix', not {match!r}")
    deny = consolidate_defaults() if deny is None else deny
    not_implying = compile_patterns(deny.not_implying)
    pairs = {(tag_key(a), tag_key(b)) for a, b in deny.pairs}
    by_key = _by_key(vocab)
    out: dict[str, list[str]] = {}
    for key, specifics in by_key.items():
        words = key.split(" ")
        if len(words) < 2:
            continue
        subs = set()
        for start in range(len(words)):
            ends = [len(words)] if match == "suffix" else range(start + 1, len(words) + 1)
            for end in ends:
                if end - start < len(words):
                    subs.add(" ".join(words[start:end]))
        generics = [g for sub in subs if sub in by_key and (sub, key) not in pairs for g in by_key[sub]]
        if not generics:
            continue
        for specific in specifics:
            if not not_implying.matches(specific):
                out[specific] = sorted(generics)
    return out


def redundancy_rules(
    tag_lists: Sequence[Sequence[str]], match: str = "words", deny: ConsolidateDefaults | None = None
) -> list[Rule]:
    """Rules dropping a tag where a more specific tag containing it is in the same caption.

    Args:
        tag_lists (`Sequence[Sequence[str]]`): the parsed captions (iterated twice).
        match (`str`, *optional*, defaults to ``"words"``): see :func:`contained`.
        deny (`ConsolidateDefaults`, *optional*): deny-lists; defaults to the shipped ones.

    Returns:
        `list[Rule]`: ``Rule(remove=(generic,), requires=(specific,))`` with counts, most
        frequent first; rules that never fire are left out.
    """
    relation = contained(vocabulary(tag_lists), match, deny)
    rules = [
        Rule(
            (generic,),
            requires=(specific,),
            kind="redundant",
            reason=f"{generic} is part of {specific} in the same caption",
        )
        for specific, generics in relation.items()
        for generic in generics
    ]
    return count_rules(rules, tag_lists)


def implications(vocab: Iterable[str], deny: ConsolidateDefaults | None = None) -> dict[str, list[str]]:
    """Generic → specific tags by word suffix within a vocabulary (``shirt`` → ``white_shirt``).

    Args:
        vocab (`Iterable[str]`): distinct tags (exact text).
        deny (`ConsolidateDefaults`, *optional*): deny-lists; defaults to the shipped ones.

    Returns:
        `dict[str, list[str]]`: generic tag → its more specific forms, sorted.
    """
    out: dict[str, list[str]] = {}
    for specific, generics in contained(vocab, "suffix", deny).items():
        for generic in generics:
            out.setdefault(generic, []).append(specific)
    return {g: sorted(s) for g, s in out.items()}


def specialize_rules(
    tag_lists: Sequence[Sequence[str]],
    choose: Mapping[str, str] | None = None,
    deny: ConsolidateDefaults | None = None,
) -> list[Rule]:
    """Rules replacing a generic tag that stands alone with a more specific form.

    In a caption that has ``shirt`` and no ``*_shirt``, ``shirt`` becomes the specific form:
    the user's choice from ``choose`` (any tag, e.g. ``{"bow": "red_bowtie"}``), else the only
    specific form the dataset uses. A generic with several specific forms and no choice gets no
    rule: :func:`implications` lists the candidates for the UI to ask.

    Args:
        tag_lists (`Sequence[Sequence[str]]`): the parsed captions (iterated twice).
        choose (`Mapping[str, str]`, *optional*): generic → the specific tag to use.
        deny (`ConsolidateDefaults`, *optional*): deny-lists; defaults to the shipped ones.

    Returns:
        `list[Rule]`: ``Rule(remove=(generic,), add=specific, unless=specifics)`` with counts.
    """
    vocab = vocabulary(tag_lists)
    implied = implications(vocab, deny)
    chosen = {tag_key(g): s for g, s in (choose or {}).items()}
    rules = []
    for generic in vocab:
        specifics = implied.get(generic, [])
        target = chosen.get(tag_key(generic))
        if target is None:
            if len(specifics) != 1:
                continue
            target = specifics[0]
            reason = f"{generic} alone; the only more specific form in the dataset is {target} ({vocab[target]} captions)"
        else:
            reason = f"{generic} alone → {target} (chosen)"
        unless = tuple(sorted({*specifics, target}))
        rules.append(Rule((generic,), add=target, unless=unless, kind="specialize", reason=reason))
    return count_rules(rules, tag_lists)


def merge_rules(tag_lists: Sequence[Sequence[str]], deny: ConsolidateDefaults | None = None) -> list[Rule]:
    """Opt-in head-noun merge: ``white_dress, turtleneck_dress`` → ``white_turtleneck_dress``.

    Multi-word tags of one caption sharing their last word merge into one tag: the modifiers of
    the more frequent tag first, then the head noun. Tags with a stop word (``on``, ``holding``,
    ``pull`` …), listed tags (``open_mouth`` …) and protected heads (``hair``, ``eyes`` …) never
    merge, so ``long_hair, blonde_hair`` stays as is. Names of 4+ words say so in the reason.

    Args:
        tag_lists (`Sequence[Sequence[str]]`): the parsed captions (iterated twice).
        deny (`ConsolidateDefaults`, *optional*): deny-lists; defaults to the shipped ones.

    Returns:
        `list[Rule]`: ``Rule(remove=(a, b, …), add=merged)`` with counts.
    """
    deny = consolidate_defaults() if deny is None else deny
    stop = {tag_key(w) for w in deny.merge_stop_words}
    never = {tag_key(t) for t in deny.merge_never}
    never_heads = {tag_key(h) for h in deny.merge_never_heads}
    vocab = vocabulary(tag_lists)
    mergeable: dict[str, str] = {}  # tag -> head
    for tag in vocab:
        words = tag_key(tag).split(" ")
        if len(words) < 2 or tag_key(tag) in never or words[-1] in never_heads or stop.intersection(words):
            continue
        mergeable[tag] = words[-1]
    order = {t: (-vocab[t], tag_key(t)) for t in mergeable}
    proposals: dict[tuple[str, ...], Rule] = {}
    for tags in tag_lists:
        groups: dict[str, list[str]] = {}
        for t in dict.fromkeys(tags):
            head = mergeable.get(t)
            if head is not None:
                groups.setdefault(head, []).append(t)
        for head, members in groups.items():
            if len(members) < 2:
                continue
            members = sorted(members, key=order.__getitem__)
            key = tuple(members)
            if key not in proposals:
                proposals[key] = _merge_rule(members, head)
    return count_rules(proposals.values(), tag_lists)


def _merge_rule(members: list[str], head: str) -> Rule:
    words: list[str] = []
    for t in members:
        for w in tag_key(t).split(" ")[:-1]:
            if w not in words:
                words.append(w)
    sep = "_" if "_" in members[0] else " "
    merged = sep.join([*words, head])
    reason = f"{', '.join(members)} share the noun {head!r}"
    if len(words) + 1 >= 4:
        reason += "; long merged name, check it"
    return Rule(tuple(members), add=merged, kind="merge", reason=reason)
