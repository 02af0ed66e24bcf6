"""The batch API: only changed captions, fast enough for 100,000."""

import time

from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset
from lora_bakery.extension.dataset.tags.edit import add_triggers, remove_tags


def test_only_changed_items_in_order():
    captions = {"b": "x, meme", "a": "x", "c": "meme", "d": "x,y"}
    changed = apply_to_dataset(captions, remove_tags(["meme"]))
    assert list(changed) == ["b", "c"]
    assert changed == {"b": ("x, meme", "x"), "c": ("meme", "")}
    # Reformatting alone is not a change (no file rewritten for whitespace).
    assert apply_to_dataset({"d": "x,y\n"}, remove_tags(["zzz"])) == {}
    assert apply_to_dataset({}, remove_tags(["meme"])) == {}
    assert parse_dataset({"k": "a, b"}) == {"k": ["a", "b"]}
    parsed = parse_dataset(captions)
    assert apply_to_dataset(captions, remove_tags(["meme"]), parsed=parsed) == changed
    assert parsed["b"] == ["x", "meme"]  # not modified by the operation


def test_batch_is_fast():
    captions = {
        f"10_c/{i}.png": f"1girl, solo, tag_{i % 500}, long_hair, smile, meme, blue_eyes"
        for i in range(20_000)
    }
    start = time.perf_counter()
    changed = apply_to_dataset(captions, add_triggers("T"))
    elapsed = time.perf_counter() - start
    assert len(changed) == 20_000
    assert elapsed < 3.0, elapsed  # ~0.1 s here; generous for slow shared CI
