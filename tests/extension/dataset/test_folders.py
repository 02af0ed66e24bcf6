"""Concept folder names (kohya ``N_name``) and image listing."""

from __future__ import annotations

import pytest

from lora_bakery.trainer.data import folders
from lora_bakery.trainer.data.folders import list_images, parse_concept_folder, problems

from .makers import pattern, save


@pytest.mark.parametrize(("name", "expected"), [
    ("10_my char", (10, "my char")),
    ("3_outfit_1", (3, "outfit_1")),
    ("010_x", (10, "x")),
    ("1_", (1, "")),
    ("0_x", (None, "0_x")),
    ("_x", (None, "_x")),
    ("x_1", (None, "x_1")),
    ("x", (None, "x")),
    ("-1_x", (None, "-1_x")),
    (" 10_x", (None, " 10_x")),
    ("10x", (None, "10x")),
    ("²_x", (None, "²_x")),
])
def test_parse_concept_folder(name, expected):
    assert parse_concept_folder(name) == expected


@pytest.mark.parametrize(("name", "needle"), [
    ("0_x", "trains none"),
    ("x_1", "must come first: '1_x'"),
    ("_x", "no repeat count"),
    ("plain", "kohya skips"),
    ("10x", "needs an underscore"),
    (" 10_x", "starts with a space"),
    ("+5_x", "plain digits"),
    ("1_", "no name after"),
    ("5000_x", "typo"),
])
def test_problems_explain_bad_names(name, needle):
    msgs = problems(name)
    assert msgs and any(needle in m for m in msgs), msgs


def test_good_name_has_no_problems():
    assert problems("10_my char") == []


def test_concept_folder_name_roundtrip():
    assert folders.concept_folder_name(6, "outfit2") == "6_outfit2"
    assert parse_concept_folder(folders.concept_folder_name(6, "a_b")) == (6, "a_b")
    with pytest.raises(ValueError):
        folders.concept_folder_name(0, "x")


def test_list_images_sorted_case_insensitive_skips_hidden_and_ours(tmp_path):
    for n in ("b.PNG", "a.jpg", "c.WebP", ".hidden.png", "d.txt", "e.bmp", "f.GIF", "g.jpeg"):
        save(pattern(4, 4), tmp_path / n, format={"txt": "PNG"}.get(n.rsplit(".", 1)[1].lower()) or None) \
            if not n.endswith(".txt") else (tmp_path / n).write_text("x")
    save(pattern(4, 4), tmp_path / ".bakery" / "x.png")
    save(pattern(4, 4), tmp_path / "_duplicates" / "y.png")
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a.jpg", "b.PNG", "c.WebP", "e.bmp", "f.GIF", "g.jpeg"]


def test_avif_listed_only_where_readable():
    assert (".avif" in folders.IMAGE_EXTENSIONS) == folders.avif_readable()
    assert {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"} <= folders.IMAGE_EXTENSIONS
