"""The Compare tab builds on the installed gradio (3.41.2 or 4.44) and its handlers work on real files."""

from __future__ import annotations

from lora_bakery.extension.app import build_app
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.ui import UiContext, compat
from lora_bakery.extension.ui.compare import handlers
from lora_bakery.extension.ui.dataset import common


def test_the_tab_builds():
    demo = build_app(UiContext(host_name="diffusers"))
    ids = {b.elem_id for b in demo.blocks.values() if getattr(b, "elem_id", None)}
    assert {"lora_bakery_compare_folder", "lora_bakery_compare_run", "lora_bakery_compare_epochs"} <= ids


def test_handlers(sd15_host, locon_run, tmp_path):
    folder = str(locon_run[0].parent)
    message, table, checklist = handlers.scan(folder)
    assert "3 LoRA file(s)" in message and list(table["epoch"]) == ["1", "2", "3"]
    assert handlers.scan("")[0].startswith(compat.ERROR_PREFIX)
    chosen = ["e1 · demo-000001.safetensors", "final (e3) · demo.safetensors"]
    text, png, _ = handlers.norms(folder, chosen, str(tmp_path))
    assert text.startswith("Strongest blocks") and png.endswith("block-norms.png")
    ctx = UiContext(host_name="diffusers", host_factory=lambda: sd15_host, jobs=JobQueue(),
                    settings={"compare_presets_file": str(tmp_path / "presets.txt")})
    saved, _ = handlers.save_presets_text(ctx, "MINE:" + ",".join(["0.5"] * 17))
    assert "Saved" in saved and (tmp_path / "presets.txt").read_text().startswith("MINE:")
    baked, path = handlers.bake(ctx, folder, chosen, "MINE", 1.0, 1.0, True, str(tmp_path / "mine.safetensors"))
    assert "Baked" in baked and path.endswith("mine.safetensors")
    values = [folder, chosen, "a cat", "", 3, 1, 64, 64, 7.0, "", 1.0, "", "epoch", "", "weight", "0, 1", "none", ""]
    outputs = list(handlers.run_grid(ctx, common.JobSlot(), str(tmp_path / "grids"), *values))
    final = outputs[-1]
    assert "4/4 cells" in final[1], final[1]
    prompt, infotext = handlers.cell_prompt(final[5], 3)
    assert prompt == "a cat <lora:demo:1>" and handlers.cell_prompt(final[5], 9) == ("", "")
    # what A1111's "Send to txt2img" would paste (its parser, tests/fakes/a1111/infotext_utils.py)
    from tests.fakes.a1111.infotext_utils import parse_generation_parameters

    pasted = parse_generation_parameters(infotext)
    assert pasted["Prompt"] == prompt and pasted["Steps"] == "1" and pasted["Seed"] == "3"
    assert pasted["Size-1"] == pasted["Size-2"] == "64" and pasted["CFG scale"] == "7"
