"""Write modes through the dataset safety plan: backup, apply, undo byte-identical."""

from __future__ import annotations

import pytest

from lora_bakery.extension.dataset import safety
from lora_bakery.extension.host.base import NullProgress
from lora_bakery.extension.tagger.captions import merge_caption, plan_captions
from lora_bakery.extension.tagger.workflow import TagSettings, tag_dataset

TAGS = ["saber (fate)", "blue theme", "long hair"]


@pytest.mark.parametrize(
    ("existing", "mode", "expected"),
    [
        (None, "skip", "saber (fate), blue theme, long hair"),
        ("  ", "skip", "saber (fate), blue theme, long hair"),
        ("old, tags", "skip", None),
        ("old, tags", "overwrite", "saber (fate), blue theme, long hair"),
        ("old, long_hair", "prepend", "saber (fate), blue theme, long hair, old"),
        ("old, long_hair", "append", "old, long_hair, saber (fate), blue theme"),
        ("mychar, ||| old, blue_theme", "prepend", "mychar, ||| saber (fate), blue theme, long hair, old"),
        ("mychar, ||| old", "append", "mychar, ||| old, saber (fate), blue theme, long hair"),
        (None, "append", "saber (fate), blue theme, long hair"),
    ],
)
def test_merge_caption(existing, mode, expected):
    assert merge_caption(existing, TAGS, mode) == expected


def test_bad_mode():
    with pytest.raises(ValueError, match="write mode"):
        merge_caption(None, TAGS, "replace")  # type: ignore[arg-type]


def test_plan_apply_undo(tmp_path):
    root = tmp_path / "train"
    (root / "10_blue").mkdir(parents=True)
    images = [root / "10_blue" / f"{n}.png" for n in ("new", "same", "old", "latin")]
    (root / "10_blue" / "same.txt").write_text("saber (fate), blue theme, long hair")
    (root / "10_blue" / "old.txt").write_bytes(b"old, tags\n")
    (root / "10_blue" / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    before = {p.name: p.read_bytes() for p in (root / "10_blue").glob("*.txt")}

    plan = plan_captions(dict.fromkeys(images, TAGS), "append")
    assert [(c.kind, c.path.rsplit("/", 1)[1]) for c in plan.changes] == [("create", "new.txt"), ("write", "old.txt")]
    (why,) = [why for path, why in plan.skipped if path == str(root / "10_blue" / "latin.txt")]
    assert why.startswith("caption is not UTF-8") and "rewrite-utf8" in why  # a real operation, by name
    record = safety.apply(plan, root)
    assert (root / "10_blue" / "old.txt").read_text() == "old, tags, saber (fate), blue theme, long hair\n"  # line end kept
    assert (root / "10_blue" / "new.txt").read_text() == "saber (fate), blue theme, long hair"
    safety.undo(record)
    assert not (root / "10_blue" / "new.txt").exists()
    assert {p.name: p.read_bytes() for p in (root / "10_blue").glob("*.txt")} == before

    plan = plan_captions(dict.fromkeys(images, TAGS), "overwrite")  # overwrite replaces even non-UTF-8 (backed up)
    assert sorted(c.path.rsplit("/", 1)[1] for c in plan.changes) == ["latin.txt", "new.txt", "old.txt"]


def test_tag_dataset_skip_mode_end_to_end(tmp_path, colour_images, tiny_v3, tiny_v2_b1):
    folder = colour_images["red"].parent
    (folder / "red.txt").write_text("my own caption")
    (folder / "broken.png").write_bytes(b"\x89PNG broken")
    settings = TagSettings(models=[str(tiny_v3), str(tiny_v2_b1)], mode="skip", exclude=["1girl"])
    images = sorted(folder.glob("*.png"))
    run, plan = tag_dataset(images, settings, NullProgress())
    assert "red.png" not in {r.path.name for r in run.results}
    assert len(run.results) == 5 and [p.name for p, _ in run.skipped] == ["broken.png"]
    skipped = dict(plan.skipped)
    assert skipped[str(folder / "red.txt")].startswith("caption exists (skip mode; --mode")
    assert skipped[str(folder / "broken.png")].startswith("cannot read image")
    record = safety.apply(plan, tmp_path)
    assert (folder / "blue.txt").read_text() == "saber (fate), blue theme, simple background"
    assert (folder / "red.txt").read_text() == "my own caption"
    safety.undo(record)
    assert sorted(p.name for p in folder.glob("*.txt")) == ["red.txt"]
