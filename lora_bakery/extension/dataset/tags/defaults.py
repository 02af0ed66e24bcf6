"""Default lists shipped as data files in ``tags/data/`` (traits, outfit pieces, useless tags,
synonyms, consolidation deny-lists).

They are starting points the user edits: every function that uses a list takes it as an
argument, and these loaders only supply the default. Each call returns fresh objects, so editing
what you got never changes what the next caller gets.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"


@cache
def _load(name: str) -> dict[str, Any]:
    with open(DATA_DIR / name, encoding="utf-8") as f:
        return json.load(f)


def load_data(name: str) -> dict[str, Any]:
    """A deep copy of one data file (``"traits.json"`` …), for callers that want it raw.

    Args:
        name (`str`): file name inside ``tags/data/``.

    Returns:
        `dict`: the parsed JSON.
    """
    return copy.deepcopy(_load(name))


@dataclass
class TraitCategory:
    """One editable list of trait tags (hair colour, eye colour …)."""

    name: str
    label: str
    default: bool
    tags: list[str]


def trait_categories() -> dict[str, TraitCategory]:
    """The trait categories a character trigger absorbs, in file order.

    Returns:
        `dict[str, TraitCategory]`: name → category; ``default`` says whether it is ticked.
    """
    data = load_data("traits.json")["categories"]
    return {
        name: TraitCategory(name, c["label"], bool(c["default"]), list(c["tags"])) for name, c in data.items()
    }


def default_trait_patterns() -> list[str]:
    """The patterns of every category ticked by default.

    Returns:
        `list[str]`: tags/patterns to prune into a character trigger.
    """
    return [t for c in trait_categories().values() if c.default for t in c.tags]


def protected_traits() -> list[str]:
    """Tags never pruned by default (breast size: recipes.md "Never prune breast size").

    Returns:
        `list[str]`: patterns.
    """
    return list(load_data("traits.json")["protected"])


@dataclass
class OutfitDefaults:
    """Clothing vocabulary for outfit suggestions and outfit trigger names."""

    heads: list[str]
    trailing: list[str]
    protected: list[str]


def outfit_defaults() -> OutfitDefaults:
    """Clothing head nouns, trailing modifiers and protected footwear.

    Returns:
        `OutfitDefaults`: fresh lists.
    """
    d = load_data("outfit.json")
    return OutfitDefaults(list(d["heads"]), list(d["trailing"]), list(d["protected"]))


def useless_patterns() -> list[str]:
    """Tags deleted as useless (meme, parody, ``*_redraw_challenge_(meme)``, shiny_skin, uncensored …).

    Returns:
        `list[str]`: patterns.
    """
    return list(load_data("useless.json")["patterns"])


@dataclass
class SynonymTable:
    """Aliases (always replaced) and pick-one groups (one kept where several appear)."""

    aliases: dict[str, list[str]] = field(default_factory=dict)
    pick_one: list[list[str]] = field(default_factory=list)
    prefer: dict[int, str] = field(default_factory=dict)  # group index -> preferred tag


def synonym_table() -> SynonymTable:
    """The default synonym table (blond_hair → blonde_hair; circlet/tiara …).

    Returns:
        `SynonymTable`: fresh, editable.
    """
    d = load_data("synonyms.json")
    groups = [list(g["tags"]) for g in d["pick_one"]]
    prefer = {i: g["prefer"] for i, g in enumerate(d["pick_one"]) if g.get("prefer")}
    return SynonymTable({k: list(v) for k, v in d["aliases"].items()}, groups, prefer)


@dataclass
class ConsolidateDefaults:
    """Deny-lists for :mod:`.consolidate`."""

    not_implying: list[str]
    pairs: list[tuple[str, str]]
    merge_stop_words: list[str]
    merge_never: list[str]
    merge_never_heads: list[str]


def consolidate_defaults() -> ConsolidateDefaults:
    """Deny-lists that keep the containment/suffix heuristics honest (``no_shirt`` ⇏ ``shirt``).

    Returns:
        `ConsolidateDefaults`: fresh lists.
    """
    d = load_data("consolidate.json")
    return ConsolidateDefaults(
        list(d["not_implying"]),
        [(a, b) for a, b in d["pairs"]],
        list(d["merge_stop_words"]),
        list(d["merge_never"]),
        list(d["merge_never_heads"]),
    )
