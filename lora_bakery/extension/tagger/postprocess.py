"""From model probabilities to caption tags: thresholds, MCut, union, formatting.

reference/dataset-tools.md §1 "Postprocessing": the Space keeps ``prob > threshold``; MCut
(Largeron et al. 2012, "MCut: a thresholding strategy for multi-label classification") is applied
to each category separately, and for characters floored at 0.15. Ratings are optional: the
argmax of the rating columns (kohya ``--use_rating_tags``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lora_bakery.extension.dataset.tags.normalize import (
    KAOMOJI,
    escape_parens,
    tag_key,
    underscores_to_spaces,
)
from lora_bakery.extension.tagger.labels import Labels

__all__ = [
    "KAOMOJI", "FormatOptions", "Prediction", "Thresholds", "format_tag", "format_tags", "mcut_threshold",
    "select", "union",
]

CHARACTER_MCUT_FLOOR = 0.15


@dataclass
class Thresholds:
    """Per-tagger selection settings.

    Attributes:
        general (`float`, defaults to 0.35): keep general tags with probability above this.
        character (`float`, defaults to 0.85): same for characters (the Space's default).
        general_mcut (`bool`, defaults to `False`): use MCut instead of ``general``.
        character_mcut (`bool`, defaults to `False`): use max(0.15, MCut) instead of ``character``.
    """

    general: float = 0.35
    character: float = 0.85
    general_mcut: bool = False
    character_mcut: bool = False


@dataclass
class Prediction:
    """Selected tags of one image, raw names (underscores) → probability, highest first."""

    rating: dict[str, float] = field(default_factory=dict)
    general: dict[str, float] = field(default_factory=dict)
    character: dict[str, float] = field(default_factory=dict)


def mcut_threshold(probs: np.ndarray) -> float:
    """MCut: the midpoint of the largest drop between neighbours of the sorted probabilities.

    Args:
        probs (`np.ndarray`): one category's probabilities.

    Returns:
        `float`: the threshold; 0.0 for fewer than two values (keeps them all, like OneTrainer).
    """
    if len(probs) < 2:
        return 0.0
    ordered = np.sort(np.asarray(probs, dtype=np.float64))[::-1]
    t = int(np.argmax(ordered[:-1] - ordered[1:]))
    return float((ordered[t] + ordered[t + 1]) / 2)


def _pick(probs: np.ndarray, indices: np.ndarray, names: Sequence[str], threshold: float) -> dict[str, float]:
    values = probs[indices]
    keep = np.flatnonzero(values > threshold)
    keep = keep[np.argsort(-values[keep], kind="stable")]
    return {names[indices[i]]: float(values[i]) for i in keep}


def select(probs: np.ndarray, labels: Labels, thresholds: Thresholds) -> Prediction:
    """Apply thresholds (or MCut) to one image's output row.

    Args:
        probs (`np.ndarray`): ``[num_tags]`` sigmoid outputs.
        labels (`Labels`): the tagger's CSV.
        thresholds (`Thresholds`): the tagger's settings.

    Returns:
        `Prediction`: every rating probability, and the general/character tags above threshold.
    """
    general_thr = thresholds.general
    if thresholds.general_mcut:
        general_thr = mcut_threshold(probs[labels.general])
    character_thr = thresholds.character
    if thresholds.character_mcut:
        character_thr = max(CHARACTER_MCUT_FLOOR, mcut_threshold(probs[labels.character]))
    return Prediction(
        rating=_pick(probs, labels.rating, labels.names, -1.0),
        general=_pick(probs, labels.general, labels.names, general_thr),
        character=_pick(probs, labels.character, labels.names, character_thr),
    )


def _merge(parts: Iterable[dict[str, float]], taken: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in parts:
        for name, p in part.items():
            if name not in taken:
                out[name] = max(p, out.get(name, -1.0))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def union(predictions: Sequence[Prediction]) -> Prediction:
    """Several taggers' selections as one: each tag once, at its highest probability.

    A tag one tagger calls a character stays a character even if another calls it general.
    Ratings are averaged (each tagger gives all four), so the argmax is a consensus.
    """
    if len(predictions) == 1:
        return predictions[0]
    character = _merge((p.character for p in predictions), set())
    general = _merge((p.general for p in predictions), set(character))
    rating: dict[str, float] = {}
    for p in predictions:
        for name, value in p.rating.items():
            rating[name] = rating.get(name, 0.0) + value / len(predictions)
    return Prediction(rating=rating, general=general, character=character)


@dataclass
class FormatOptions:
    """How selected tags become caption text.

    Attributes:
        replace_underscores (`bool`, defaults to `True`): ``long_hair`` → ``long hair``, except kaomoji.
        escape_parentheses (`bool`, defaults to `False`): ``saber_(fate)`` → ``saber \\(fate\\)``
            (A1111's escaping, for prompts; training captions usually keep plain parentheses).
        rating (`str`, defaults to ``"none"``): ``"first"``/``"last"`` adds the most likely rating.
        characters_first (`bool`, defaults to `True`): characters before general tags.
        exclude (`Sequence[str]`): tags never written; matched case-insensitively against the raw
            and the formatted name, ``*``/``?`` wildcards allowed.
        max_tags (`int`, *optional*): keep at most this many general tags (highest first).
    """

    replace_underscores: bool = True
    escape_parentheses: bool = False
    rating: Literal["none", "first", "last"] = "none"
    characters_first: bool = True
    exclude: Sequence[str] = ()
    max_tags: int | None = None


def format_tag(name: str, replace_underscores: bool = True, escape_parentheses: bool = False) -> str:
    """One raw tag name as caption text (kaomoji such as ``^_^`` keep their underscores).

    Spelling rules are the caption editor's (``dataset.tags.normalize``), so tagger output and
    later edits agree on what a tag is.
    """
    if replace_underscores:
        name = underscores_to_spaces(name)
    return escape_parens(name) if escape_parentheses else name


def _excluded(patterns: Sequence[str]) -> Callable[[str], bool]:
    """Exact patterns compare by ``tag_key`` (case, underscores/spaces, escapes ignored);
    patterns with ``*``/``?``/``[`` are wildcards matched against the key and the raw name."""
    cleaned = [p.strip() for p in patterns if p.strip()]
    exact = {tag_key(p) for p in cleaned if not any(c in p for c in "*?[")}
    wild = [(p.lower(), tag_key(p)) for p in cleaned if any(c in p for c in "*?[")]

    def test(name: str) -> bool:
        key = tag_key(name)
        if key in exact:
            return True
        raw = name.lower()
        return any(fnmatch.fnmatchcase(raw, w) or fnmatch.fnmatchcase(key, wk) for w, wk in wild)

    return test


def format_tags(prediction: Prediction, options: FormatOptions | None = None) -> list[str]:
    """The caption tags of one image, in order, each once.

    Args:
        prediction (`Prediction`): selected tags (one tagger or a :func:`union`).
        options (`FormatOptions`, *optional*): formatting; defaults to ``FormatOptions()``.

    Returns:
        `list[str]`: tags ready to join with ``", "``.
    """
    options = options or FormatOptions()
    excluded = _excluded(options.exclude)
    general = list(prediction.general)
    if options.max_tags is not None:
        general = general[: max(0, options.max_tags)]
    character = list(prediction.character)
    names = character + general if options.characters_first else general + character
    if options.rating != "none" and prediction.rating:
        best = max(prediction.rating, key=prediction.rating.__getitem__)
        names = [best] + names if options.rating == "first" else names + [best]
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        key = tag_key(name)
        if key not in seen and not excluded(name):
            seen.add(key)
            out.append(format_tag(name, options.replace_underscores, options.escape_parentheses))
    return out
