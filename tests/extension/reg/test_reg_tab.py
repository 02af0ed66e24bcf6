"""The Reg images tab builds on the installed gradio and its handlers work on real folders (A1111 fakes as host)."""

from __future__ import annotations

import gradio as gr

from lora_bakery.extension.app import build_app
from lora_bakery.extension.host.a1111 import A1111Host
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.ui import UiContext, compat
from lora_bakery.extension.ui.dataset import common
from lora_bakery.extension.ui.reg import handlers
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.webui import installed_fake_webui

from .helpers import make_training

IDS = {"lora_bakery_reg_intro", "lora_bakery_reg_source", "lora_bakery_reg_remove", "lora_bakery_reg_preview",
       "lora_bakery_reg_generate", "lora_bakery_reg_interrupt", "lora_bakery_reg_gallery", "lora_bakery_reg_reroll",
       "lora_bakery_reg_delete", "lora_bakery_reg_table"}
#: Panel values in handlers.SETTING_FIELDS order (tiny sizes, as gradio Numbers send them: floats).
VALUES = ["captions", "chara, outfit1", "", "", "", "lowres", 1.0, "bucket", 64.0, 512.0, 512.0, 1.0, 1.0, "",
          5.0, 2.0, 0.0, True]


def test_the_tab_builds():
    demo = build_app(UiContext(host_name="diffusers"))
    assert IDS <= {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert "Reg images" in {b.label for b in demo.blocks.values() if isinstance(b, gr.Tab)}


def test_suggest_preview_and_bad_values(tmp_path):
    root = make_training(tmp_path / "train")
    message, remove, output = handlers.suggest(str(root))
    assert remove == "chara, outfit1" and output == str((tmp_path / "reg").resolve()) and "`chara`" in message
    md, table, skipped = handlers.preview(str(root), "", *VALUES)
    assert "3 reg image(s)" in md and list(table["prompt"])[1] == "1girl, red_hair, smile"
    assert set(table["size"]) == {"64x64"} and set(skipped["source"]) == {"10_chara/c.png", "10_chara/d.png"}
    bad = list(VALUES)
    bad[handlers.SETTING_FIELDS.index("steps")] = 0.0
    assert handlers.preview(str(root), "", *bad)[0].startswith(compat.ERROR_PREFIX + "steps")
    assert handlers.suggest("")[0].startswith(compat.ERROR_PREFIX)
    assert handlers.toggle("a", ["a", "b"], 1) == "a\nb" and handlers.toggle("a\nb", ["a", "b"], 0) == "b"


def test_generate_review_reroll_delete(tmp_path, monkeypatch):
    root = make_training(tmp_path / "train")
    with installed_fake_webui() as webui:
        webui.load(tiny_checkpoint("sd15"), "sd1")
        monkeypatch.setattr(webui.processing, "_weights_checksum", lambda sd_model: 0.0)  # see test_generate_a1111
        ctx, slot = UiContext(host_factory=A1111Host, jobs=JobQueue()), common.JobSlot()
        steps = list(handlers.generate(ctx, slot, str(root), "", "resume", *VALUES))
        progress, message, gallery, paths = steps[-1]
        assert "done" in progress and "3 reg image(s) generated" in message, message
        assert paths == ["10_chara/a.png", "10_chara/b.png", "3_outfit/e.png"] and len(gallery) == 3
        out = str((tmp_path / "reg").resolve())
        last = list(handlers.act_on_selection(ctx, slot, "reroll", out, "10_chara/a.png\n"))[-1]
        assert "Re-rolled 1 image" in last[1] and len(webui.processing.calls) == 4
        last = list(handlers.act_on_selection(ctx, slot, "delete", out, "3_outfit/e.png"))[-1]
        assert "Deleted 1 image" in last[1] and last[3] == ["10_chara/a.png", "10_chara/b.png"]
        assert list(handlers.act_on_selection(ctx, slot, "delete", out, ""))[-1][1].startswith(compat.ERROR_PREFIX)
    nohost = list(handlers.generate(UiContext(jobs=JobQueue()), slot, str(root), "", "resume", *VALUES))
    assert "no model" in nohost[-1][1]

