"""Frequency table, filters, caption flags."""

from lora_bakery.extension.dataset.tags.batch import parse_dataset
from lora_bakery.extension.dataset.tags.stats import (
    caption_flags,
    filter_captions,
    flag_dataset,
    folder_of,
    frequency_table,
    spelling_variants,
    tag_frequency,
)

CAPTIONS = parse_dataset(
    {
        "10_a/1.png": "T, ||| 1girl, long_hair, smile",
        "10_a/2.png": "1girl, long hair, smile, smile",
        "5_b/1.png": "1boy, short_hair",
        "root.png": "1girl, meme",
    }
)


def test_frequency_table_total_and_per_folder():
    rows = {r.tag: r for r in frequency_table(CAPTIONS)}
    assert rows["1girl"].total == 3 and rows["1girl"].folders == {"10_a": 2, "": 1}
    assert rows["smile"].total == 2  # repeated in one caption: counted once
    assert rows["T"].folders == {"10_a": 1}
    assert "|||" not in rows
    assert [r.tag for r in frequency_table(CAPTIONS)][:2] == ["1girl", "smile"]
    assert folder_of("a\\b\\c.png") == "a\\b" and folder_of("x.png") == ""


def test_tag_frequency_loose_and_variants():
    assert tag_frequency(CAPTIONS.values())["long_hair"] == 1
    assert tag_frequency(CAPTIONS.values(), loose=True)["long hair"] == 2
    vocab = {t for tags in CAPTIONS.values() for t in tags}
    assert spelling_variants(vocab) == {"long hair": ["long hair", "long_hair"]}


def test_filters_all_any_none():
    assert filter_captions(CAPTIONS, all_of=["1girl", "smile"]) == ["10_a/1.png", "10_a/2.png"]
    assert filter_captions(CAPTIONS, any_of=["1boy", "meme"]) == ["5_b/1.png", "root.png"]
    assert filter_captions(CAPTIONS, none_of=["*hair"]) == ["root.png"]
    assert filter_captions(CAPTIONS, all_of=["1girl"], none_of=["long_hair"]) == ["root.png"]
    assert filter_captions(CAPTIONS) == list(CAPTIONS)


def test_caption_flags():
    assert caption_flags("1girl, smile") == []
    assert [f.code for f in caption_flags(None)] == ["missing"]
    assert [f.code for f in caption_flags("")] == ["empty"]
    assert [f.code for f in caption_flags(" , ||| ,")] == ["empty"]
    big = ", ".join(f"tag_number_{i}" for i in range(100))
    assert [f.code for f in caption_flags(big)] == ["too_large", "too_many_tags"]
    assert [f.code for f in caption_flags(big, max_bytes=10_000, max_tags=100)] == []
    assert [f.code for f in caption_flags("日本" * 200)] == ["too_large"]  # bytes, not characters
    dup = caption_flags("a, long_hair, long hair, a")
    assert dup[0].code == "duplicates" and dup[0].message == "repeated: a, long_hair"
    assert [f.code for f in caption_flags("a\nb\n")] == ["multiline"]
    assert [f.code for f in caption_flags("a ||| b ||| c ||| d")] == ["separators"]
    assert flag_dataset({"x": "a", "y": None, "z": ""}) == {"y": caption_flags(None), "z": caption_flags("")}
