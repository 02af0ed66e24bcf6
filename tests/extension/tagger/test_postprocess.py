"""Thresholds, MCut, union and caption formatting on hand-made probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from lora_bakery.extension.tagger.labels import Labels
from lora_bakery.extension.tagger.postprocess import (
    KAOMOJI,
    FormatOptions,
    Prediction,
    Thresholds,
    format_tag,
    format_tags,
    mcut_threshold,
    select,
    union,
)

NAMES = ("general", "sensitive", "questionable", "explicit",
         "long_hair", "smile", "^_^", "hat_(object)", "blush",
         "saber_(fate)", "hatsune_miku")
LABELS = Labels(NAMES, np.arange(4), np.arange(4, 9), np.array([9, 10]))


def test_mcut_hand_computation():
    # sorted: 0.9, 0.8, 0.3, 0.2, 0.1 → drops 0.1, 0.5, 0.1, 0.1 → largest after 0.8 → (0.8 + 0.3) / 2
    assert mcut_threshold(np.array([0.2, 0.9, 0.1, 0.8, 0.3])) == pytest.approx(0.55)
    # ties: the first largest drop wins (argmax), as in the Space
    assert mcut_threshold(np.array([1.0, 0.5, 0.0])) == pytest.approx(0.75)
    assert mcut_threshold(np.array([0.4])) == 0.0 and mcut_threshold(np.array([])) == 0.0


def test_threshold_is_strict_and_sorted():
    probs = np.array([0.7, 0.2, 0.05, 0.05, 0.35, 0.36, 0.9, 0.5, 0.1, 0.85, 0.86])
    pred = select(probs, LABELS, Thresholds(general=0.35, character=0.85))
    assert list(pred.general) == ["^_^", "hat_(object)", "smile"]  # 0.35 is not > 0.35
    assert list(pred.character) == ["hatsune_miku"]
    assert pred.rating == pytest.approx({"general": 0.7, "sensitive": 0.2, "questionable": 0.05, "explicit": 0.05})


def test_mcut_per_category_with_character_floor():
    probs = np.array([0.7, 0.2, 0.05, 0.05, 0.95, 0.9, 0.2, 0.15, 0.1, 0.12, 0.02])
    pred = select(probs, LABELS, Thresholds(general=0.99, character=0.99, general_mcut=True, character_mcut=True))
    assert list(pred.general) == ["long_hair", "smile"]  # mcut (0.9 + 0.2) / 2 = 0.55
    # character mcut = (0.12 + 0.02) / 2 = 0.07, floored at 0.15 → nothing
    assert pred.character == {}
    probs[9] = 0.6
    pred = select(probs, LABELS, Thresholds(character_mcut=True))
    assert list(pred.character) == ["saber_(fate)"]


def test_union_keeps_each_tag_once_at_max_score():
    a = Prediction({"general": 0.8, "sensitive": 0.2}, {"smile": 0.5, "blush": 0.4}, {"saber_(fate)": 0.9})
    b = Prediction({"general": 0.4, "sensitive": 0.6}, {"blush": 0.7, "long_hair": 0.45, "saber_(fate)": 0.5}, {})
    u = union([a, b])
    assert u.general == {"blush": 0.7, "smile": 0.5, "long_hair": 0.45}
    assert u.character == {"saber_(fate)": 0.9}  # a character for one tagger stays a character
    assert u.rating == pytest.approx({"general": 0.6, "sensitive": 0.4})


def test_format_kaomoji_escape_exclude_rating():
    pred = Prediction({"general": 0.3, "sensitive": 0.6}, {"^_^": 0.9, "long_hair": 0.8, "hat_(object)": 0.5, "smile": 0.4},
                      {"saber_(fate)": 0.95})
    assert format_tags(pred) == ["saber (fate)", "^_^", "long hair", "hat (object)", "smile"]
    opts = FormatOptions(escape_parentheses=True, rating="first", exclude=["Long Hair", "sm*"])
    assert format_tags(pred, opts) == ["sensitive", "saber \\(fate\\)", "^_^", "hat \\(object\\)"]
    opts = FormatOptions(replace_underscores=False, characters_first=False, rating="last", max_tags=2)
    assert format_tags(pred, opts) == ["^_^", "long_hair", "saber_(fate)", "sensitive"]
    assert format_tags(pred, FormatOptions(exclude=["hat_\\(object\\)"]))[-1] == "smile"  # escaped form matches too


def test_every_kaomoji_keeps_its_underscore():
    assert len(KAOMOJI) == 19
    for face in KAOMOJI:
        assert format_tag(face) == face
    assert format_tag("(o)_(o)", escape_parentheses=True) == "\\(o\\)_\\(o\\)"
    assert format_tag("long_hair") == "long hair"
