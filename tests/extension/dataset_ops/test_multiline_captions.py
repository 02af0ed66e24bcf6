"""Multi-line captions: every caption tool edits line 1 (what kohya trains) and keeps the other lines byte for byte.

Real caption files in a temp folder; the trainer's own ``read_caption`` is the oracle for "what is trained".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from lora_bakery.cli import main
from lora_bakery.extension.dataset.scan import scan
from lora_bakery.extension.dataset.tags.stats import caption_flags
from lora_bakery.extension.dataset_ops import registry
from lora_bakery.extension.tagger.captions import merge_caption
from lora_bakery.extension.tagger.tiny import write_tiny_tagger
from lora_bakery.trainer.data.captions import (
    caption_lines,
    join_trained_line,
    read_caption,
    split_trained_line,
)

A = b"1girl, smile\nsecond line, extra\n"
B = b"1girl\r\nkeep this\r\n\r\nthird\r\n"
C = b"solo, blue_eyes"  # one line, no line end


@pytest.fixture()
def root(tmp_path) -> Path:
    folder = tmp_path / "train" / "10_chara"
    folder.mkdir(parents=True)
    for name, data in (("a", A), ("b", B), ("c", C)):
        Image.new("RGB", (32, 32), (10 * len(name), 80, 90)).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_bytes(data)
    return tmp_path / "train"


@pytest.mark.parametrize("text", ["a, b", "a, b\n", "a\r\nb\r\n", "a\rb", "\nb", "", "a\x0cb\u2028c\nd"])
def test_split_and_join_are_exact_inverses(text):
    line, rest = split_trained_line(text)
    assert line + rest == text == join_trained_line(line, rest)
    assert "\n" not in line and "\r" not in line
    assert line == (caption_lines(text) or [""])[0]  # kohya's readlines(): \x0c and U+2028 stay inside a line
    with pytest.raises(ValueError, match="line break"):
        join_trained_line("x\ny", rest)


def test_add_triggers_edits_line_one_and_keeps_the_rest(root, capsys):
    assert main(["dataset", "captions", str(root), "add-triggers", "--triggers", "chara"]) == 0
    out = capsys.readouterr().out
    # the preview shows each whole caption, before and after, every line
    assert "  - 1girl, smile\n  - second line, extra\n  + chara, ||| 1girl, smile\n  + second line, extra" in out
    assert "  + keep this\n  + \n  + third" in out
    assert (root / "10_chara/a.txt").read_bytes() == A  # dry run
    assert main(["dataset", "captions", str(root), "add-triggers", "--triggers", "chara", "--apply"]) == 0
    assert (root / "10_chara/a.txt").read_bytes() == b"chara, ||| 1girl, smile\nsecond line, extra\n"
    assert (root / "10_chara/b.txt").read_bytes() == b"chara, ||| 1girl\r\nkeep this\r\n\r\nthird\r\n"
    assert (root / "10_chara/c.txt").read_bytes() == b"chara, ||| solo, blue_eyes"
    # what the trainer reads is exactly the edited line
    assert read_caption(root / "10_chara/a.png") == "chara, ||| 1girl, smile"
    assert main(["dataset", "undo", str(root)]) == 0
    assert (root / "10_chara/a.txt").read_bytes() == A and (root / "10_chara/b.txt").read_bytes() == B


def test_filters_and_rule_ops_see_only_the_trained_line(root):
    # 'extra' is only on line 2, which the trainer never reads: no caption matches, nothing to remove
    done = registry.preview(root, "remove-tags", {"patterns": "extra"})
    assert not done.plan.changes
    done = registry.preview(root, "add-triggers", {"triggers": "x", "all_of": "extra"})
    assert done.extra["filtered"] == 0 and not done.plan.changes
    done = registry.preview(root, "dedupe-tags", {})  # 'second line' vs 'keep this' etc. are not duplicates of line 1
    assert not done.plan.changes
    done = registry.preview(root, "sort-tags", {"triggers": "smile"})
    after = {r["path"]: r["after"] for r in done.extra["captions"]}
    assert after["10_chara/a.txt"] == "smile, 1girl\nsecond line, extra\n"


def test_tagger_append_and_overwrite_keep_later_lines():
    tags = ["blue theme", "smile"]
    assert merge_caption("1girl, smile\nsecond line\n", tags, "append") == "1girl, smile, blue theme\nsecond line\n"
    assert merge_caption("1girl\r\nkept", tags, "prepend") == "blue theme, smile, 1girl\r\nkept"
    assert merge_caption("old\nkept", tags, "overwrite") == "blue theme, smile\nkept"
    assert merge_caption("\nonly line two", tags, "skip") == "blue theme, smile\nonly line two"  # line 1 is empty
    assert merge_caption("has tags\nx", tags, "skip") is None


def test_tag_command_append_on_a_multiline_caption(tmp_path, capsys):
    folder = tmp_path / "train" / "5_colours"
    folder.mkdir(parents=True)
    Image.new("RGB", (48, 48), (0, 0, 255)).save(folder / "blue.png")
    (folder / "blue.txt").write_bytes(b"my tag\nline two\n")
    model = write_tiny_tagger(tmp_path / "tagger", "v2", fixed_batch=True, size=32)
    assert main(["tag", str(tmp_path / "train"), "--model", str(model), "--offline", "--mode", "append",
                 "--apply"]) == 0
    out = capsys.readouterr().out
    assert "  - my tag\n  - line two\n  + my tag, " in out
    data = (folder / "blue.txt").read_bytes()
    first, rest = data.split(b"\n", 1)
    assert first.startswith(b"my tag, ") and b"blue theme" in first and rest == b"line two\n"


def test_scan_and_flags_use_the_trained_line(root):
    (root / "10_chara/d.png").write_bytes((root / "10_chara/a.png").read_bytes())
    (root / "10_chara/d.txt").write_bytes(b"\nall tags on line two, never trained")
    result = scan(root, use_cache=False)
    by = {Path(im.path).stem: im for _f, im in result.images()}
    assert by["a"].caption.tags == 2 and by["a"].caption.lines == 2
    assert by["b"].caption.lines == 3
    codes = {p.code for p in by["d"].caption.problems}
    assert {"caption-empty", "caption-lines"} <= codes  # line 1 is empty: kohya trains an empty caption
    flags = {f.code for f in caption_flags("\nall tags on line two")}
    assert {"empty", "multiline"} <= flags
    assert not {f.code for f in caption_flags("a, b\n")}  # a trailing line end is not a second line
