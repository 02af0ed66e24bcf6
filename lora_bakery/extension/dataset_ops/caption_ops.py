"""The caption editor's batch operations by name, over the filtered set of a training folder.

Each operation is a name plus a ``params`` dict (the same in the UI, the CLI and the API). Simple
edits (triggers, remove, replace …) become one ``TagOp``; dataset-level ones (consolidate,
synonyms, prune, useless) first propose :class:`~lora_bakery.extension.dataset.tags.rules.Rule`
objects, which the preview lists with their counts; ``params["skip_rules"]`` (rule descriptions)
drops the ones the user disagrees with. The result is a ``Plan`` for ``safety.apply``.

Every operation and filter works on line 1 of a caption file, the line the trainer reads
(``trainer.data.captions.split_trained_line``); the other lines are written back byte for byte, and
the preview's (old, new) texts are whole files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lora_bakery.extension.dataset.safety import Plan
from lora_bakery.extension.dataset.tags import consolidate, edit, prune, stats, synonyms
from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset
from lora_bakery.extension.dataset.tags.defaults import SynonymTable, synonym_table, trait_categories
from lora_bakery.extension.dataset.tags.parse import split_tags
from lora_bakery.extension.dataset.tags.rules import Rule, apply_rules
from lora_bakery.extension.dataset_ops.captions import CaptionSet, plan_caption_texts, plan_rewrite_utf8
from lora_bakery.trainer.data.captions import join_trained_line, split_trained_line

#: Operation name → one line for ``--help`` and the UI.
CAPTION_OPS: dict[str, str] = {
    "add-triggers": "put trigger tag(s) first, in order, then the keep-tokens separator '|||'",
    "remove-tags": "remove tags (exact, * glob or re:regex patterns)",
    "replace-tags": "replace tags: 'old=new' pairs (new may be empty or several tags)",
    "dedupe-tags": "remove repeated tags (long_hair = long hair)",
    "normalize-tags": "underscores ↔ spaces (kaomoji kept), escape parentheses, lowercase",
    "consolidate": "drop a tag implied by a more specific one (shirt + white_shirt → white_shirt)",
    "synonyms": "merge synonyms (blond_hair → blonde_hair, tiara/circlet pick one)",
    "prune-traits": "prune character traits (hair, eyes, makeup, skin) into a character trigger",
    "prune-outfit": "prune outfit pieces into an outfit trigger",
    "remove-useless": "delete useless tags (meme, parody, shiny_skin, uncensored …)",
    "sort-tags": "sort tags by dataset frequency, triggers first",
    "rewrite-utf8": "rewrite non-UTF-8 (or BOM) caption files as UTF-8",
}


@dataclass
class CaptionPreview:
    """What a caption operation would do.

    Attributes:
        op (`str`): the operation name.
        plan (`Plan`): caption writes (nothing applied yet).
        changed (`dict[str, tuple[str, str]]`): image key → (old, new) text of the whole caption file.
        rules (`list[Rule]`): the proposed rules (rule operations), with counts, before ``skip_rules``.
        keys (`list[str]`): the filtered set the operation ran on.
        notes (`list[str]`): things to tell the user (the outfit trigger chosen …).
    """

    op: str
    plan: Plan
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def as_list(value: Any) -> list[str]:
    """``"a, b"`` / ``"a\\nb"`` / ``["a", "b"]`` / ``None`` → ``["a", "b"]`` (patterns and tag lists from any front end)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.replace("\n", ",").split(",") if p.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def rule_names(value: Any) -> set[str]:
    """Rule descriptions from a list, or one per line (descriptions contain commas)."""
    if value is None:
        return set()
    if isinstance(value, str):
        return {line.strip() for line in value.splitlines() if line.strip()}
    return {str(v).strip() for v in value}


def parse_mapping(value: Any) -> dict[str, str]:
    """``"old=new; a=b"`` (or one pair per line) or a dict → ``{"old": "new", "a": "b"}``.

    Raises:
        ValueError: a pair without ``=``.
    """
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): str(v) for k, v in value.items()}
    out = {}
    for part in str(value).replace("\n", ";").split(";"):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"replace: {part.strip()!r} is not an 'old=new' pair")
        old, new = part.split("=", 1)
        out[old.strip()] = new.strip()
    return out


def filter_keys(tag_lists: Mapping[str, list[str]], params: Mapping[str, Any]) -> list[str]:
    """The filtered set: ``all_of`` / ``any_of`` / ``none_of`` patterns (the Dataset Tag Editor's AND/OR/NONE)."""
    return stats.filter_captions(tag_lists, as_list(params.get("all_of")), as_list(params.get("any_of")),
                                 as_list(params.get("none_of")))


def _synonym_table(params: Mapping[str, Any]) -> SynonymTable:
    table = synonym_table()
    extra = parse_mapping(params.get("synonyms"))  # variant=canonical pairs typed by the user
    for variant, canonical in extra.items():
        table.aliases.setdefault(canonical, []).append(variant)
    return table


def _rules(op: str, lists: list[list[str]], params: Mapping[str, Any], notes: list[str]) -> tuple[list[Rule], list[str]]:
    """(proposed rules, triggers to put first) of a rule operation."""
    trigger = as_list(params.get("trigger"))
    if op == "consolidate":
        rules = consolidate.redundancy_rules(lists, str(params.get("match") or "words"))
        if params.get("specialize", True):
            rules += consolidate.specialize_rules(lists, parse_mapping(params.get("choose")))
        if params.get("merge", False):
            rules += consolidate.merge_rules(lists)
        return rules, []
    if op == "synonyms":
        return synonyms.synonym_rules(lists, _synonym_table(params)), []
    if op == "remove-useless":
        patterns = as_list(params.get("patterns")) or None
        return prune.useless_rules(lists, patterns), []
    if op == "prune-traits":
        if not trigger:
            raise ValueError("prune-traits: give the character trigger, e.g. 'chara_name' (--trigger; the 'Trigger "
                             "that absorbs pruned tags' box)")
        cats = trait_categories()
        chosen = as_list(params.get("categories")) or [n for n, c in cats.items() if c.default]
        unknown = [c for c in chosen if c not in cats]
        if unknown:
            raise ValueError(f"prune-traits: unknown categories {', '.join(unknown)}; use {', '.join(cats)}")
        categories = {cats[n].label: cats[n].tags for n in chosen}
        extra = as_list(params.get("patterns"))
        if extra:
            categories["your list"] = extra
        protect = as_list(params.get("protect")) if params.get("protect") is not None else None
        return prune.trait_rules(lists, categories, protect, trigger[0]), trigger
    if op == "prune-outfit":
        pieces = as_list(params.get("pieces"))
        if not pieces:
            share = float(params.get("min_share") or 0.5)
            pieces = [t for t, _ in prune.suggest_outfit_pieces(lists, share)]
            notes.append("outfit pieces (in at least {:.0%} of the captions): {}".format(share, ", ".join(pieces) or "none"))
        if not trigger:
            name = prune.outfit_trigger_name(pieces)
            if not name:
                raise ValueError("prune-outfit: no outfit pieces found; list them (--pieces; the 'Outfit pieces' box), "
                                 "or lower --min-share")
            trigger = [name]
            notes.append(f"outfit trigger: {name} (choose another with --trigger, or the 'Trigger that absorbs pruned "
                         "tags' box)")
        return prune.outfit_rules(lists, pieces, trigger=trigger[0]), trigger
    raise ValueError(f"unknown caption operation {op!r}")


def _simple_op(op: str, params: Mapping[str, Any], lists: Sequence[list[str]]) -> Callable[[list[str]], list[str]]:
    if op == "add-triggers":
        triggers = as_list(params.get("triggers") or params.get("trigger"))
        if not triggers:
            raise ValueError("add-triggers: give at least one trigger tag (--triggers; the 'Trigger tag(s)' box)")
        return edit.add_triggers(triggers, bool(params.get("separator", True)))
    if op == "remove-tags":
        patterns = as_list(params.get("patterns") or params.get("tags"))
        if not patterns:
            raise ValueError("remove-tags: give the tags or patterns to remove (--patterns; the 'Tags / patterns' box)")
        return edit.remove_tags(patterns)
    if op == "replace-tags":
        mapping = parse_mapping(params.get("mapping"))
        if not mapping:
            raise ValueError("replace-tags: give 'old=new' pairs (--mapping; the 'Pairs' box)")
        return edit.replace_tags(mapping)
    if op == "dedupe-tags":
        return edit.deduplicate(bool(params.get("loose", True)))
    if op == "normalize-tags":
        escape = params.get("escape")
        if isinstance(escape, str):
            escape = {"escape": True, "unescape": False}.get(escape)
        return edit.respell(str(params.get("underscores") or "spaces"), escape, bool(params.get("lowercase", False)),
                            protect=as_list(params.get("protect")))
    if op == "sort-tags":
        freq = stats.tag_frequency(lists, loose=True)
        return edit.sort_by_frequency(freq, as_list(params.get("triggers")))
    raise ValueError(f"unknown caption operation {op!r}; one of {', '.join(CAPTION_OPS)}")


def preview_caption_op(captions: CaptionSet, op: str, params: Mapping[str, Any] | None = None) -> CaptionPreview:
    """Run a caption operation on the filtered set, without writing anything.

    Args:
        captions (`CaptionSet`): the folder's captions (``captions.load_captions``).
        op (`str`): one of :data:`CAPTION_OPS`.
        params (`Mapping`, *optional*): the operation's options plus the filter (``all_of``,
            ``any_of``, ``none_of``) and, for rule operations, ``skip_rules`` (descriptions).

    Returns:
        `CaptionPreview`: the plan, the changed captions and the proposed rules.

    Raises:
        ValueError: unknown operation or a missing/invalid option (the message names it).
    """
    params = dict(params or {})
    if op not in CAPTION_OPS:
        raise ValueError(f"unknown caption operation {op!r}; one of {', '.join(CAPTION_OPS)}")
    lines_all = captions.trained_lines()
    lists_all = parse_dataset(lines_all)
    keys = filter_keys(lists_all, params)
    if op == "rewrite-utf8":
        return CaptionPreview(op, plan_rewrite_utf8(captions, keys), keys=keys)
    create = bool(params.get("create_missing", False))
    editable = [k for k in keys if captions.editable(k) is None and (create or k not in captions.missing)]
    texts = {k: lines_all[k] for k in editable}
    lists = [lists_all[k] for k in editable]
    notes: list[str] = []
    rules: list[Rule] = []
    if op in ("consolidate", "synonyms", "remove-useless", "prune-traits", "prune-outfit"):
        rules, trigger = _rules(op, lists, params, notes)
        skip = rule_names(params.get("skip_rules"))
        kept = [r for r in rules if r.describe() not in skip]
        if trigger:
            operation = prune.prune_into_trigger(kept, trigger, bool(params.get("separator", True)))
        else:
            operation = apply_rules(kept)
    else:
        operation = _simple_op(op, params, lists)
    changed = {k: (captions.texts[k], join_trained_line(new, split_trained_line(captions.texts[k])[1]))
               for k, (_old, new) in apply_to_dataset(texts, operation, lists_all).items()}
    plan = plan_caption_texts(captions, {k: new for k, (_old, new) in changed.items()}, op)
    plan.skipped += [(captions.files.get(k, k), why) for k in keys if (why := captions.editable(k))]
    if not create:
        missing = [k for k in keys if k in captions.missing and captions.editable(k) is None]
        plan.skipped += [(captions.files.get(k, k), "no caption file: tag it first, or also create missing captions "
                                                           "(--create-missing; 'Also create missing captions')")
                         for k in missing]
    return CaptionPreview(op, plan, changed, rules, keys, notes)


def caption_text_after(old: str, new: str) -> str:
    """A one-line diff of two caption texts' trained lines: ``-removed +added`` tags (for previews)."""
    a, b = split_tags(split_trained_line(old)[0]), split_tags(split_trained_line(new)[0])
    gone = [t for t in a if t not in b]
    added = [t for t in b if t not in a]
    parts = [f"-{t}" for t in gone] + [f"+{t}" for t in added]
    if not parts and a != b:
        parts.append("reordered")
    return " ".join(parts)
