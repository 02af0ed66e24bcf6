"""Pruning: delete the tags a trigger should absorb, and the tags nobody needs.

lora-baking-guide "Pruning" and recipes.md: a character trigger absorbs hair colour and style,
eye colour, makeup and skin (breast size is never pruned by default); an outfit trigger absorbs
the outfit's pieces (never the shoes); useless tags (meme, parody, ``*_redraw_challenge_(meme)``,
shiny_skin, uncensored …) go everywhere. Each function returns :class:`~.rules.Rule` objects with
counts and reasons; :func:`prune_into_trigger` applies the accepted ones and adds the trigger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from lora_bakery.extension.dataset.tags.defaults import (
    outfit_defaults,
    protected_traits,
    trait_categories,
    useless_patterns,
)
from lora_bakery.extension.dataset.tags.edit import TagOp, add_triggers, compose
from lora_bakery.extension.dataset.tags.match import compile_patterns
from lora_bakery.extension.dataset.tags.normalize import tag_key
from lora_bakery.extension.dataset.tags.parse import split_tags
from lora_bakery.extension.dataset.tags.rules import Rule, apply_rules, vocabulary


def _removal_rules(
    vocab: Mapping[str, int],
    lists: Mapping[str, Sequence[str]],
    protect: Sequence[str],
    kind: str,
    why: str,
) -> list[Rule]:
    protected = compile_patterns(protect)
    matchers = [(label, compile_patterns(patterns)) for label, patterns in lists.items()]
    rules = []
    for tag, count in vocab.items():
        if protected.matches(tag):
            continue
        for label, matcher in matchers:
            pattern = matcher.which(tag)
            if pattern is not None:
                how = "" if tag_key(pattern) == tag_key(tag) else f" (matches {pattern})"
                rules.append(Rule((tag,), kind=kind, reason=f"{label}{how}{why}", count=count))
                break
    return sorted(rules, key=lambda r: (-r.count, r.remove[0]))


def useless_rules(tag_lists: Iterable[Sequence[str]], patterns: Sequence[str] | None = None) -> list[Rule]:
    """Rules deleting useless tags found in the dataset.

    Args:
        tag_lists (`Iterable[Sequence[str]]`): the parsed captions.
        patterns (`Sequence[str]`, *optional*): the useless list; defaults to
            :func:`~.defaults.useless_patterns`.

    Returns:
        `list[Rule]`: one rule per useless tag present, most frequent first.
    """
    lists = {"useless tag": useless_patterns() if patterns is None else patterns}
    return _removal_rules(vocabulary(tag_lists), lists, (), "useless", "")


def trait_rules(
    tag_lists: Iterable[Sequence[str]],
    categories: Mapping[str, Sequence[str]] | None = None,
    protect: Sequence[str] | None = None,
    trigger: str = "",
) -> list[Rule]:
    """Rules pruning character traits into a character trigger.

    Args:
        tag_lists (`Iterable[Sequence[str]]`): the parsed captions of the character's images.
        categories (`Mapping[str, Sequence[str]]`, *optional*): label → patterns. Defaults to
            the categories ticked in ``traits.json`` (hair colour, hair style, eye colour,
            makeup, skin).
        protect (`Sequence[str]`, *optional*): never pruned; defaults to breast size
            (:func:`~.defaults.protected_traits`). Pass ``[]`` to allow everything.
        trigger (`str`, *optional*): named in the reasons.

    Returns:
        `list[Rule]`: one rule per trait tag present, most frequent first.
    """
    if categories is None:
        categories = {c.label: c.tags for c in trait_categories().values() if c.default}
    why = f", absorbed by the trigger {trigger}" if trigger else ", absorbed by the trigger"
    protect = protected_traits() if protect is None else protect
    return _removal_rules(vocabulary(tag_lists), categories, protect, "trait", why)


def outfit_rules(
    tag_lists: Iterable[Sequence[str]],
    pieces: Sequence[str],
    protect: Sequence[str] | None = None,
    trigger: str = "",
) -> list[Rule]:
    """Rules pruning outfit pieces into an outfit trigger.

    Args:
        tag_lists (`Iterable[Sequence[str]]`): the parsed captions of the outfit's images.
        pieces (`Sequence[str]`): the pieces (patterns), e.g. from :func:`suggest_outfit_pieces`.
        protect (`Sequence[str]`, *optional*): never pruned; defaults to footwear ("never fold
            shoes into an outfit trigger").
        trigger (`str`, *optional*): named in the reasons.

    Returns:
        `list[Rule]`: one rule per piece present, most frequent first.
    """
    protect = outfit_defaults().protected if protect is None else protect
    why = f", absorbed by the outfit trigger {trigger}" if trigger else ", absorbed by the outfit trigger"
    return _removal_rules(vocabulary(tag_lists), {"outfit piece": pieces}, protect, "outfit", why)


def is_clothing(tag: str, heads: Iterable[str]) -> bool:
    """Whether a tag names a clothing piece: its last word, or the whole tag, is a clothing noun.

    Args:
        tag (`str`): one tag.
        heads (`Iterable[str]`): clothing nouns (``outfit.json`` ``heads``).

    Returns:
        `bool`: True for ``red_dress``, ``obi``, ``hair_ribbon`` …
    """
    return _is_clothing_key(tag_key(tag), {tag_key(h) for h in heads})


def _is_clothing_key(key: str, heads: set[str]) -> bool:
    return (
        key in heads
        or key.rsplit(" ", 1)[-1] in heads
        or any(key.endswith(" " + h) for h in heads if " " in h)
    )


def suggest_outfit_pieces(
    tag_lists: Sequence[Sequence[str]],
    min_share: float = 0.5,
    heads: Sequence[str] | None = None,
    protect: Sequence[str] | None = None,
) -> list[tuple[str, float]]:
    """Clothing tags present in at least ``min_share`` of the outfit folder's captions.

    The images of one outfit share its pieces; a piece the tagger saw in most of them is a
    candidate for pruning into the outfit trigger. Footwear is left out by default.

    Args:
        tag_lists (`Sequence[Sequence[str]]`): the parsed captions of one outfit's images.
        min_share (`float`, *optional*, defaults to 0.5): the fraction of captions a tag needs.
        heads (`Sequence[str]`, *optional*): clothing nouns; defaults to ``outfit.json``.
        protect (`Sequence[str]`, *optional*): never suggested; defaults to footwear.

    Returns:
        `list[tuple[str, float]]`: ``(tag, share)``, most common first.
    """
    defaults = outfit_defaults()
    heads = defaults.heads if heads is None else heads
    protected = compile_patterns(defaults.protected if protect is None else protect)
    total = len(tag_lists)
    if total == 0:
        return []
    keys = {tag_key(h) for h in heads}
    out = []
    for tag, count in vocabulary(tag_lists).items():
        share = count / total
        if share < min_share or protected.matches(tag):
            continue
        if _is_clothing_key(tag_key(tag), keys):
            out.append((tag, share))
    return sorted(out, key=lambda x: (-x[1], x[0]))


def outfit_trigger_name(pieces: Sequence[str], trailing: Sequence[str] | None = None) -> str:
    """An outfit trigger name from its pieces, most visible first: ``Yellow_short_Kimono_Obi_Sleeveless``.

    Pieces sharing a head noun merge (``yellow_kimono, short_kimono`` → ``Yellow_short_Kimono``);
    the first word of each group and its head noun are capitalised; modifiers such as
    ``sleeveless`` or ``detached_sleeves`` go last (lora-baking-guide "Outfits"). A name made of
    real words gets some helpful contamination from the model; check it generates something close.

    Args:
        pieces (`Sequence[str]`): piece tags in decreasing visibility.
        trailing (`Sequence[str]`, *optional*): modifiers written last; defaults to ``outfit.json``.

    Returns:
        `str`: the trigger, words joined with underscores.
    """
    trailing_keys = {tag_key(t) for t in (outfit_defaults().trailing if trailing is None else trailing)}
    groups: dict[str, list[str]] = {}
    tail: list[str] = []
    for piece in pieces:
        key = tag_key(piece)
        if not key:
            continue
        if key in trailing_keys:
            tail.append(key)
            continue
        *mods, head = key.split(" ")
        words = groups.setdefault(head, [])
        words.extend(m for m in mods if m not in words)
    parts = []
    for head, mods in groups.items():
        words = [*mods, head]
        words[0] = words[0].capitalize()
        words[-1] = words[-1].capitalize()
        parts.append("_".join(words))
    parts.extend("_".join(w.capitalize() if i == 0 else w for i, w in enumerate(t.split(" "))) for t in tail)
    return "_".join(parts)


def prune_into_trigger(rules: Iterable[Rule], triggers: str | Iterable[str], separator: bool = True) -> TagOp:
    """Apply accepted prune rules, then put the trigger(s) first (and ``|||`` after them).

    Args:
        rules (`Iterable[Rule]`): the accepted rules (trait, outfit or useless).
        triggers (`str` or `Iterable[str]`): the trigger(s); never removed by the rules.
        separator (`bool`, *optional*, defaults to True): insert the keep-tokens separator.

    Returns:
        `TagOp`: the operation.
    """
    trig = split_tags(triggers) if isinstance(triggers, str) else list(triggers)
    return compose(apply_rules(rules, protect=trig), add_triggers(trig, separator))
