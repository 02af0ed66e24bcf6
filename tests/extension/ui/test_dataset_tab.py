"""The Dataset tab builds on the installed gradio (3.41.2 or 4.44) and its handlers work on real files."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from lora_bakery.extension.app import build_app
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.ui import UiContext, compat
from lora_bakery.extension.ui.dataset import batch, common, editor, folder, prep, repeats, review, tagging
from lora_bakery.extension.ui.dataset import thumbs as thumbs_mod
from tests.extension.dataset_ops.helpers import make_dataset, tree_digest

SECTION_IDS = {
    "lora_bakery_dataset_intro", "lora_bakery_ds_root", "lora_bakery_ds_scan", "lora_bakery_ds_undo_last",
    "lora_bakery_ds_interrupt", "lora_bakery_ds_prep_op", "lora_bakery_ds_buckets_show", "lora_bakery_ds_dupes_find",
    "lora_bakery_ds_masks_preview", "lora_bakery_ds_tag_run", "lora_bakery_ds_cap_gallery", "lora_bakery_ds_cap_op",
    "lora_bakery_ds_cap_apply", "lora_bakery_ds_rep_apply", "lora_bakery_ds_backup_undo",
}


def _ids(demo: gr.Blocks) -> set[str]:
    return {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}


def test_the_tab_builds_with_every_section():
    demo = build_app(UiContext(host_name="diffusers"))
    assert SECTION_IDS <= _ids(demo)
    labels = {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}
    assert {"Image prep", "Buckets", "Duplicates", "Masks", "Tagging", "Captions", "Repeats", "Backups"} <= labels


def test_scan_and_undo_handlers(tmp_path):
    root = make_dataset(tmp_path / "train")
    md, folders, problems = folder.scan_outputs(str(root))
    assert "10 images" in md
    assert set(folders["folder"]) >= {"10_chara", "3_outfit"}
    assert "zero-byte" in set(problems["code"])
    assert folder.undo_last(str(root)).startswith(compat.ERROR_PREFIX)


def test_follow_streams_progress_and_shows_errors(tmp_path):
    ctx, slot = UiContext(jobs=JobQueue()), common.JobSlot()
    root = make_dataset(tmp_path / "train")
    steps = list(common.follow(ctx, slot, "scan", lambda job: folder.scan_outputs(str(root), job), 4))
    assert "done" in steps[-1][0] and "10 images" in steps[-1][1]
    failed = list(common.follow(ctx, slot, "scan", lambda job: folder.scan_outputs(str(tmp_path / "no"), job), 4))
    assert failed[-1][1].startswith(compat.ERROR_PREFIX) and "does not exist" in failed[-1][1]
    assert slot.interrupt(ctx) == "No dataset job is running."


def test_caption_editor_batch_ops_and_undo(tmp_path):
    root = make_dataset(tmp_path / "train")
    before = tree_digest(root)
    md, table, _choices = editor.frequency(str(root), "count", "", "", "")
    assert "distinct tags" in md and table["tag"].iloc[0] == "1girl" and "10_chara" in table.columns
    items, keys, info, number = editor.page(str(root), "smile", "", "", 1)
    assert len(items) == len(keys.splitlines()) == 2 and number == 1 and "Page 1 of 1" in info
    assert all(path and thumbs_mod.cache_dir().as_posix() in path for path, _ in items)
    params = batch.batch_params("chara", True, "", "", "", "", "spaces", "keep", False, False, False,
                                "", "", "", "", [])
    md, diff, _rules, _proposed = batch.run_batch(str(root), "add-triggers", params, apply=False)
    assert "Preview only" in md and tree_digest(root) == before
    changed = diff[~diff["change"].str.startswith("left alone")]
    assert len(changed) == 4 and changed["caption before"].iloc[0].startswith("1girl")  # whole texts, before and after
    assert len(diff) - len(changed) == 6 and "listed at the end of the table" in md  # the skipped, with reasons
    md, diff, _rules, _proposed = batch.run_batch(str(root), "add-triggers", params, apply=True)
    assert "Applied" in md and (root / "10_chara/a.txt").read_text().startswith("chara, |||")
    rule_params = batch.batch_params("", True, "", "", "", "", "spaces", "keep", False, False, False,
                                     "", "", "", "", [])
    _md, _diff, _rules, proposed = batch.run_batch(str(root), "consolidate", rule_params, apply=False)
    assert "shirt → (removed) where white_shirt" in proposed.splitlines()
    skip_all = batch.batch_params("", True, "", "", "", "", "spaces", "keep", False, False, False,
                                  "", "", "", proposed, [])
    md, _diff, _rules, _p = batch.run_batch(str(root), "consolidate", skip_all, apply=False)
    assert "Nothing to change" in md
    assert editor.save_caption(str(root), "10_chara/a.png", "edited").startswith("Saved")
    assert (root / "10_chara/a.txt").read_text() == "edited"
    assert editor.save_caption(str(root), "10_chara/b.png", "x").startswith(compat.ERROR_PREFIX)
    assert "Undone" in folder.undo_last(str(root))
    assert "Undone" in folder.undo_last(str(root))
    assert tree_digest(root) == before


def test_prep_buckets_dupes_repeats_backups(tmp_path):
    root = make_dataset(tmp_path / "train")
    before = tree_digest(root)
    md, table, gallery = prep._op_outputs(str(root), "remove-alpha", {"color": "#fff"}, False, None)
    assert "remove-alpha: 1 write" in md and len(gallery) == 2 and list(table["kind"]) == ["write"]
    md, hist, flagged = prep.bucket_outputs(str(root), "sd15", 0, 0, 0, 64, False)
    assert "bucket" in md and "576x448" in set(hist["bucket"]) and len(flagged) > 0
    md, views = prep.trainer_views(str(root), "sd15", 0, 0, 0, 64, False)
    assert "as the trainer sees them" in md and views and all(thumbs_mod.cache_dir().as_posix() in p for p, _ in views)
    assert "→ 576x448" in " ".join(label for _, label in views)
    md, groups, plan, images = review.find_groups(str(root), 6, False, False, None)
    assert "1 group" in md and groups["kind"].iloc[0] == "exact" and len(images) == 2
    md, table = repeats.repeats_outputs(str(root), True, "prodigy", "sd15", False, False, 8, 300, 100, 1, "3_outfit")
    assert "Applied" in md and set(table["role"]) == {"concept", "subconcept"}
    md, rows, choices = repeats.backups_outputs(str(root))
    assert "1 can be undone" in md and len(rows) == 1
    assert "Undone" in repeats.undo_named(str(root), rows["name"].iloc[0], False)
    assert tree_digest(root) == before


def test_tag_params_match_the_tagger_settings(tmp_path):
    from lora_bakery.extension.dataset_ops.registry import tag_settings

    params = tagging.tag_params("a, b", 0.3, 0.9, True, False, "append", "1girl", True, False, "none", 4)
    settings = tag_settings(params)
    assert settings.models == ["a", "b"] and settings.general_mcut and settings.mode == "append"
    assert settings.exclude == ["1girl"] and settings.batch_size == 4


def test_gallery_pages_make_thumbnails_in_order_and_prefetch_the_next_page(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(editor, "PAGE_SIZE", 3)
    root = tmp_path / "train" / "5_many"
    root.mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (40 + i, 30), (i * 30, 0, 0)).save(root / f"im{i}.png")
        (root / f"im{i}.txt").write_text(f"tag{i}", encoding="utf-8")
    made = thumbs_mod.thumbnails([root / f"im{i}.png" for i in range(8)] + [root / "missing.png"])
    assert made[-1] is None and len(set(made[:-1])) == 8  # one per image, in order, the missing one None
    with Image.open(made[7]) as im:
        assert im.size[0] == 47  # small images keep their size: thumbnail only shrinks
    for p in made[:-1]:
        Path(p).unlink()
    items, keys, info, _n = editor.page(str(tmp_path / "train"), "", "", "", 2)
    assert keys.splitlines() == ["5_many/im3.png", "5_many/im4.png", "5_many/im5.png"] and "Page 2 of 3" in info
    assert [caption.split(": ", 1)[1] for _path, caption in items] == ["tag3", "tag4", "tag5"]
    thumbs_mod.wait_prefetched(timeout=30)
    assert all(Path(p).is_file() for p in made[6:8])  # page 3 was made in the background
    assert not Path(made[0]).exists()  # page 1 was not
