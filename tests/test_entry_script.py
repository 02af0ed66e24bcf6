"""scripts/lora_bakery.py loaded by path as A1111 does, against the fake webui; and the JS helper."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.fakes.http import api_client
from tests.fakes.webui import installed_fake_webui


@pytest.fixture
def fake_webui():
    with installed_fake_webui() as webui:
        yield webui

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "lora_bakery.py"
JS = ROOT / "javascript" / "lora_bakery.js"


def load_script():
    """``modules/script_loading.load_module``: exec by path under the file's basename, not in sys.modules."""
    spec = importlib.util.spec_from_file_location(SCRIPT.name, str(SCRIPT))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_is_thin():
    assert len(SCRIPT.read_text(encoding="utf-8").splitlines()) <= 150


def test_registers_one_tab_settings_and_routes(fake_webui):
    before = set(sys.modules)
    script = load_script()
    assert SCRIPT.name not in sys.modules and "lora_bakery.py" not in set(sys.modules) - before
    reg = fake_webui.script_callbacks.registered
    assert len(reg["ui_tabs"]) == len(reg["ui_settings"]) == len(reg["app_started"]) == 1
    assert script.HOST_NAME == "a1111"

    # settings: a "LoRA Bakery" section; saved values win over defaults
    fake_webui.shared.opts.lora_bakery_keep_backups = 5
    reg["ui_settings"][0][0]()
    labels = fake_webui.shared.opts.data_labels
    ours = {k: v for k, v in labels.items() if k.startswith("lora_bakery_")}
    assert set(ours) == {"lora_bakery_output_dir", "lora_bakery_keep_backups", "lora_bakery_default_tagger",
                         "lora_bakery_compare_presets_file", "lora_bakery_api_allowed_folders"}
    assert ours["lora_bakery_api_allowed_folders"].label.startswith("Folders the HTTP API may use")
    assert all(v.section == ("lora_bakery", "LoRA Bakery") and v.category_id == "training" for v in ours.values())
    assert fake_webui.shared.opts.lora_bakery_keep_backups == 5
    settings = script.LiveSettings({"keep_backups": 20})
    assert settings["keep_backups"] == 5 and settings.get("output_dir") == ""
    fake_webui.shared.opts.lora_bakery_output_dir = "/loras"
    assert settings.get("output_dir") == "/loras"  # read live, no reload needed

    # routes on a real FastAPI app; a second on_app_started (Reload UI) does not duplicate them
    app = FastAPI()
    reg["app_started"][0][0](None, app)
    reg["app_started"][0][0](None, app)
    routes = [(r.path, tuple(sorted(r.methods or ()))) for r in app.router.routes if r.path.startswith("/bakery/v1")]
    paths = {path for path, _ in routes}
    assert len(routes) == len(set(routes)) and "/bakery/v1/health" in paths
    body = api_client(app).get("/bakery/v1/health").json()
    assert body["ok"] is True and body["host"] == "a1111"

    # the job queue survives a Reload UI (the script is executed again)
    assert load_script().JOBS is script.JOBS


def test_ui_tab_is_built(fake_webui):
    pytest.importorskip("gradio")
    script = load_script()
    (callback, _), = fake_webui.script_callbacks.registered["ui_tabs"]
    tabs = callback()
    assert len(tabs) == 1
    blocks, title, elem_id = tabs[0]
    assert (title, elem_id) == ("LoRA Bakery", "lora_bakery")
    assert type(blocks).__name__ == "Blocks"
    assert script.JOBS.sink_factory is not None  # A1111: progress goes to shared.state
    # Compare's cell infotext is bound to the webui's own "Send to txt2img" (wired by the webui later)
    (binding,) = fake_webui.infotext_utils.registered_param_bindings
    assert binding.tabname == "txt2img" and binding.paste_button.elem_id == "txt2img_tab"
    assert binding.source_text_component.elem_id == "lora_bakery_compare_cell_infotext"


def test_forge_is_detected_and_blocks_model_tabs(fake_webui, monkeypatch, tmp_path):
    """A fake Forge root on sys.path: ``modules_forge/forge_version.py`` as Forge ships it."""
    forge = tmp_path / "modules_forge"
    forge.mkdir()
    (forge / "__init__.py").write_text("")
    (forge / "forge_version.py").write_text("version = '1.0.2v1.10.1'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _check_forge(fake_webui)
    finally:
        for name in ("modules_forge", "modules_forge.forge_version"):
            sys.modules.pop(name, None)


def _check_forge(fake_webui):
    from lora_bakery.extension.host.forge_detect import FORGE_UNSUPPORTED, detect_forge

    assert detect_forge() == "Forge 1.0.2v1.10.1"
    assert "dataset" not in FORGE_UNSUPPORTED and {"bake", "leco", "reg"} <= FORGE_UNSUPPORTED
    script = load_script()
    assert script.HOST_NAME == "forge" and script.FORGE == "Forge 1.0.2v1.10.1"
    app = FastAPI()
    fake_webui.script_callbacks.registered["app_started"][0][0](None, app)
    assert api_client(app).get("/bakery/v1/health").json()["host"] == "forge"


def test_not_forge_here():
    from lora_bakery.extension.host.forge_detect import detect_forge

    assert detect_forge() is None


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_js_submit_makes_a_task_id_and_requests_progress():
    driver = """
    const fs = require('fs');
    const calls = [];
    const els = {};
    for (const part of ['output', 'gallery', 'progress', 'error', 'start', 'interrupt']) {
        els['lora_bakery_bake_' + part] = {id: part, innerHTML: 'old', style: {}};
    }
    global.gradioApp = () => ({getElementById: (id) => els[id] || null});
    global.randomId = () => 'task(xyz)';
    global.requestProgress = (id, output, gallery, atEnd, onProgress) => {
        calls.push([id, output.id, gallery.id]);
        onProgress({textinfo: 'epoch 1'});
        calls.push(els.lora_bakery_bake_start.style.display + '/' + els.lora_bakery_bake_interrupt.style.display);
        atEnd();
    };
    eval(fs.readFileSync(process.argv[1], 'utf8'));
    const out = lora_bakery_submit('bake', ['', 'a', 3]);
    const plain = (delete global.requestProgress, delete global.randomId, lora_bakery_submit('nosuch', [null]));
    console.log(JSON.stringify({out, calls, info: els.lora_bakery_bake_progress.innerHTML,
        error: els.lora_bakery_bake_error.innerHTML, start: els.lora_bakery_bake_start.style.display, plain}));
    """
    res = subprocess.run(["node", "-e", driver, str(JS)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["out"] == ["task(xyz)", "a", 3]
    assert data["calls"] == [["task(xyz)", "output", "gallery"], "none/block"]
    assert data["info"] == "epoch 1" and data["error"] == "" and data["start"] == "block"
    assert data["plain"][0].startswith("task(") and data["plain"][0].endswith(")")
