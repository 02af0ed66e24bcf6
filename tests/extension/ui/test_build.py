"""The UI builds on the installed gradio (3.41.2 in the A1111 env, 4.44 standalone) with five sub-tabs."""

from __future__ import annotations

import socket
import urllib.request

import gradio as gr

from lora_bakery.extension.app import build_app, launch, make_context
from lora_bakery.extension.ui import TAB_KEYS, TAB_MODULES, UiContext, build_tabs, tab_elem_id


def _blocks(demo: gr.Blocks) -> list:
    return list(demo.blocks.values())


def _elem_ids(demo: gr.Blocks) -> set[str]:
    return {b.elem_id for b in _blocks(demo) if getattr(b, "elem_id", None)}


def test_build_app_has_the_five_tabs_in_order():
    demo = build_app(UiContext(host_name="diffusers"))
    tabs = [b for b in _blocks(demo) if isinstance(b, gr.Tab) and (b.elem_id or "").startswith("lora_bakery_tab_")]
    assert [t.elem_id for t in tabs] == [tab_elem_id(k) for k in TAB_KEYS]
    assert [t.label for t in tabs] == ["Dataset", "Reg images", "Bake", "LECO", "Compare"]
    assert [m.KEY for m in TAB_MODULES] == list(TAB_KEYS)
    assert demo.title == "LoRA Bakery"
    ids = _elem_ids(demo)
    assert {"lora_bakery_tabs", "lora_bakery_env", "lora_bakery_check_model", "lora_bakery_model_info"} <= ids
    assert {f"lora_bakery_{k}_intro" for k in TAB_KEYS} <= ids


def test_build_tabs_inside_a_host_tab_like_a1111():
    # A1111 renders our Blocks inside its own TabItem; build_tabs must not need anything else.
    with gr.Blocks(analytics_enabled=False) as outer:
        with gr.Tabs():
            with gr.Tab("LoRA Bakery", elem_id="tab_lora_bakery"):
                build_tabs(UiContext(host_factory=None, host_name="a1111"))
    assert tab_elem_id("compare") in _elem_ids(outer)


def test_forge_message_replaces_unsupported_tabs():
    ctx = UiContext(host_name="forge", forge_message="Baking in Forge is not supported yet.")
    demo = build_app(ctx)
    ids = _elem_ids(demo)
    assert "lora_bakery_dataset_intro" in ids  # dataset work needs no model
    for key in ("reg", "bake", "leco", "compare"):
        assert f"lora_bakery_{key}_intro" not in ids
        assert f"lora_bakery_{key}_unsupported" in ids
    blocked = [b for b in _blocks(demo) if getattr(b, "elem_id", None) == "lora_bakery_bake_unsupported"]
    assert "Baking in Forge is not supported yet." in blocked[0].value


def test_standalone_context_notice_and_lazy_host():
    ctx = make_context(None)
    assert ctx.host_name == "diffusers" and "tiny" in (ctx.notice or "")
    assert ctx.host_factory is not None and ctx.host_factory._host is None  # nothing loaded at build
    assert ctx.jobs is not None
    assert "my.safetensors" in (make_context("/x/my.safetensors").notice or "")


def test_launch_serves_the_page_and_returns_when_not_blocking():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(None, port, block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as r:
            assert r.status == 200
            assert "LoRA Bakery" in r.read().decode("utf-8", "replace")
    finally:
        demo.close()


def test_launch_mounts_the_bakery_api():
    import json

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = launch(None, port, block=False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/bakery/v1/health", timeout=30) as r:
            body = json.loads(r.read())
        assert body["ok"] is True and body["host"] == "diffusers"
    finally:
        demo.close()
