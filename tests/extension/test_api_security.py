"""The /bakery/v1 gates inside the webui: scripts/lora_bakery.py mounted on a real FastAPI app with the
A1111 ``cmd_opts`` fakes (``--api-auth``, ``--listen``, ``--share``, ``--server-name``,
``--enable-insecure-extension-access``), real api_folders, symlinks and files."""

from __future__ import annotations

import base64

import pytest
from fastapi import FastAPI
from PIL import Image

from lora_bakery.extension import api
from lora_bakery.extension.api_access import READ, ROUTES, WRITE
from lora_bakery.extension.jobs import JobQueue
from tests.extension.dataset_ops.helpers import make_dataset, tree_digest
from tests.fakes.http import api_client
from tests.fakes.webui import installed_fake_webui
from tests.test_entry_script import load_script

PREFIX = api.PREFIX
pytestmark = pytest.mark.usefixtures("fresh_session_folders")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def registered(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path under /bakery/v1) of every route mounted on ``app``."""
    return sorted((method, r.path[len(PREFIX):]) for r in app.router.routes if r.path.startswith(PREFIX + "/")
                  for method in r.methods)


def call(http, method: str, route: str, headers: dict | None = None, **kwargs):
    url = PREFIX + route.replace("{job_id}", "seen")
    if method == "POST":
        kwargs.setdefault("json", {})
    return http.request(method, url, headers=headers or {}, **kwargs)


@pytest.fixture
def webui(api_folders):
    """``start(**cmd_opts)`` → (HTTP client, fake webui) for the webui started with those flags."""
    allowed, _ = api_folders
    with installed_fake_webui() as fake:
        def start(**flags):
            for key, value in flags.items():
                setattr(fake.shared.cmd_opts, key, value)
            fake.shared.opts.lora_bakery_api_allowed_folders = f"{allowed}\n"
            script = load_script()
            app = FastAPI()
            fake.script_callbacks.registered["app_started"][0][0](None, app)
            script.JOBS.run("seen", lambda ctx: ctx.preview(Image.new("RGB", (4, 4))), job_id="seen")
            return api_client(app), app

        yield start, fake


def read_samples(allowed) -> dict[tuple[str, str], dict]:
    """A valid request for every read-only route, on allowed folders."""
    root, reg, loras = str(allowed / "train"), str(allowed / "reg"), str(allowed / "loras")
    return {
        ("GET", "/health"): {}, ("GET", "/jobs"): {}, ("GET", "/jobs/{job_id}"): {},
        ("GET", "/jobs/{job_id}/preview"): {}, ("GET", "/dataset/operations"): {},
        ("POST", "/dataset/scan"): {"json": {"root": root}},
        ("POST", "/dataset/buckets"): {"json": {"root": root, "op": "sort-buckets"}},
        ("GET", "/dataset/backups"): {"params": {"root": root}},
        ("POST", "/dataset/preview"): {"json": {"root": root, "op": "add-triggers", "params": {"triggers": "x"}}},
        ("POST", "/reg/preview"): {"json": {"source": root, "output": reg}},
        ("POST", "/reg/suggest"): {"json": {"source": root}},
        ("GET", "/reg/images"): {"params": {"output": reg}},
        ("GET", "/compare/epochs"): {"params": {"folder": loras}},
        ("GET", "/compare/presets"): {},
    }


def test_every_registered_route_is_classified(webui, api_folders):
    start, _ = webui
    _, app = start()
    routes = registered(app)
    assert routes and set(routes) == set(ROUTES), "every /bakery/v1 route needs one row in api_access.ROUTES"
    assert {a.mode for a in ROUTES.values()} == {READ, WRITE}
    assert {k for k, a in ROUTES.items() if a.mode == READ} == set(read_samples(api_folders[0]))


def test_an_unclassified_route_is_refused():
    router = api.create_router(JobQueue())
    router.add_api_route("/sneaky", lambda: {"ok": True}, methods=["GET"])
    app = FastAPI()
    app.include_router(router)
    res = api_client(app).get(PREFIX + "/sneaky")
    assert res.status_code == 403 and "not classified" in res.json()["detail"]


def test_api_auth_every_route_needs_the_webui_credentials(webui, api_folders):
    start, _ = webui
    http, app = start(api_auth="alice:s3cret,bob:pa:ss")
    for method, route in registered(app):
        for headers in ({}, basic("alice", "wrong"), basic("mallory", "s3cret"), {"Authorization": "Basic !!"},
                        {"Authorization": "Bearer s3cret"}):
            res = call(http, method, route, headers)
            assert res.status_code == 401, (method, route, headers, res.text)
            assert res.headers["www-authenticate"].startswith("Basic")
    samples = read_samples(api_folders[0])
    for (method, route), kwargs in samples.items():
        res = call(http, method, route, basic("alice", "s3cret"), **kwargs)
        assert res.status_code == 200, (method, route, res.text)
    assert call(http, "GET", "/health", basic("bob", "pa:ss")).status_code == 200


@pytest.mark.parametrize("flags,named", [
    ({"listen": True}, "--listen"), ({"share": True}, "--share"), ({"ngrok": "token"}, "--ngrok"),
    ({"server_name": "0.0.0.0"}, "--server-name 0.0.0.0"), ({"server_name": "192.168.1.7"}, "--server-name"),
])
def test_reachable_without_credentials_refuses_every_writing_route(webui, api_folders, flags, named):
    allowed, _ = api_folders
    start, _ = webui
    http, app = start(**flags)
    before = tree_digest(allowed / "train")
    for method, route in registered(app):
        if ROUTES[(method, route)].mode != WRITE:
            continue
        res = call(http, method, route, json={"root": str(allowed / "train"), "op": "remove-tags",
                                               "params": {"patterns": "smile"}})
        assert res.status_code == 403, (method, route, res.text)
        detail = res.json()["detail"]
        assert "--api-auth" in detail and "--enable-insecure-extension-access" in detail and named in detail
    for (method, route), kwargs in read_samples(allowed).items():
        res = call(http, method, route, **kwargs)
        assert res.status_code == 200, (method, route, res.text)
    for body in ({"as_job": True}, {"op": "tag"}, {"op": "masks"}):  # a preview that starts a job is a write
        res = call(http, "POST", "/dataset/preview", json={"root": str(allowed / "train"), "op": "trim", **body})
        assert res.status_code == 403, body
    assert tree_digest(allowed / "train") == before


@pytest.mark.parametrize("flags", [
    {}, {"server_name": "127.0.0.1"}, {"server_name": "localhost"}, {"server_name": "::1"},
    {"listen": True, "enable_insecure_extension_access": True},
    {"listen": True, "api_auth": "u:p"},
])
def test_writes_answer_on_loopback_with_credentials_or_the_insecure_flag(webui, api_folders, flags):
    allowed, _ = api_folders
    start, _ = webui
    http, _ = start(**flags)
    auth = basic("u", "p") if flags.get("api_auth") else {}
    res = call(http, "POST", "/dataset/apply", auth, json={"root": str(allowed / "train"), "op": "add-triggers",
                                                            "params": {"triggers": "chara"}})
    assert res.status_code == 200, res.text
    assert (allowed / "train/10_chara/a.txt").read_text().startswith("chara, ")


def test_traversal_and_symlink_escapes_are_403(webui, api_folders):
    allowed, outside = api_folders
    start, _ = webui
    http, _ = start()
    before = tree_digest(outside)
    escapes = [
        ("POST", "/dataset/scan", {"json": {"root": str(outside / "train")}}),
        ("POST", "/dataset/scan", {"json": {"root": str(allowed / "train/../../outside/train")}}),
        ("POST", "/dataset/apply", {"json": {"root": str(allowed / "link/train"), "op": "add-triggers",
                                             "params": {"triggers": "x"}}}),
        ("POST", "/dataset/apply", {"json": {"root": str(allowed / "train"), "op": "convert-png",
                                             "params": {"paths": ["../../outside/train/10_chara/d.jpg"]}}}),
        ("POST", "/dataset/apply", {"json": {"root": str(allowed / "train"), "op": "masks",
                                             "params": {"mask_dir": "../../outside/masks"}}}),
        ("POST", "/dataset/apply", {"json": {"root": str(allowed / "train"), "op": "masks",
                                             "params": {"mask_dir": f"/{allowed}/../../../outside"}}}),
        ("POST", "/dataset/apply", {"json": {"root": str(allowed / "train"), "op": "trim",
                                             "params": {"paths": {"../../outside/train/3_outfit/e.png": 1}}}}),
        ("POST", "/dataset/tag", {"json": {"root": str(allowed / "train"), "params": {"models": str(outside)}}}),
        ("GET", "/dataset/backups", {"params": {"root": str(outside / "train")}}),
        ("GET", "/dataset/backups", {"params": [("root", str(allowed / "train")), ("root", str(outside))]}),
        ("POST", "/reg/generate", {"json": {"source": str(allowed / "train"), "output": str(allowed / "link/reg")}}),
        ("POST", "/reg/delete", {"json": {"output": str(allowed / "reg"), "paths": ["../../outside/train/x.png"]}}),
        ("POST", "/compare/presets", {"json": {"path": str(outside / "p.txt"), "text": ""}}),
        ("POST", "/compare/norms", {"json": {"files": [str(outside / "a.safetensors")], "png": str(allowed / "n.png")}}),
        ("POST", "/compare/grid", {"json": {"spec": {"prompt": "p", "x": {"kind": "epoch", "values": [
            str(allowed / "loras/../../outside/e1.safetensors")]}}, "out": str(allowed / "g")}}),
        ("POST", "/compare/effect", {"json": {"lora": str(allowed / "a.safetensors"), "prompt": "p",
                                              "out": str(allowed / "link")}}),
    ]
    for method, route, kwargs in escapes:
        res = call(http, method, route, **kwargs)
        assert res.status_code == 403, (route, kwargs, res.text)
        assert "Folders the HTTP API may use" in res.json()["detail"], res.text
    assert tree_digest(outside) == before
    res = call(http, "POST", "/dataset/scan", json={"root": str(allowed / "train/../train")})
    assert res.status_code == 200 and res.json()["images"] == 10


def test_derived_outputs_are_checked(webui, tmp_path):
    start, fake = webui
    http, _ = start()
    train = make_dataset(tmp_path / "only/train")
    lora = tmp_path / "only/x.safetensors"
    lora.write_bytes(b"")
    fake.shared.opts.lora_bakery_api_allowed_folders = f"{train}\n{lora}"  # the folder and one file, not only/
    res = call(http, "POST", "/reg/generate", json={"source": str(train)})  # default: only/reg, beside train/
    assert res.status_code == 403 and "default reg folder" in res.json()["detail"]
    assert not (tmp_path / "only/reg").exists()
    res = call(http, "POST", "/reg/generate", json={"source": str(train), "output": str(train / "reg")})
    assert res.status_code == 400  # allowed, and then refused by the planner: inside the training folder
    res = call(http, "POST", "/compare/bake", json={"source": str(lora), "blocks": "ALL"})
    assert res.status_code == 403 and "default file beside the source" in res.json()["detail"]


def test_names_that_become_file_names_cannot_escape(webui, api_folders):
    allowed, _ = api_folders
    start, _ = webui
    http, _ = start()
    root = str(allowed / "train")
    for backup in ("../../x", "..", "a/b", "a\\b"):
        res = call(http, "POST", "/dataset/undo", json={"root": root, "backup": backup})
        assert res.status_code == 400 and "plain name" in res.json()["detail"], (backup, res.text)
    for ext in ("/../../x.txt", "..", "a\x00.txt"):
        res = call(http, "POST", "/dataset/tag", json={"root": root, "params": {"caption_extension": ext}})
        assert res.status_code == 400, (ext, res.text)
    res = call(http, "POST", "/dataset/tag", json={"root": root, "params": {"models": "SmilingWolf/.."}})
    assert res.status_code == 400
    res = call(http, "POST", "/dataset/scan", json={"root": root + "\x00"})
    assert res.status_code == 400 and "NUL" in res.json()["detail"]


def test_default_allowed_folders_are_the_webui_data_and_the_settings(webui, tmp_path):
    start, fake = webui
    lora_dir, presets = tmp_path / "models/Lora", tmp_path / "cfg/presets.txt"
    make_dataset(lora_dir / "train")
    http, _ = start(lora_dir=str(lora_dir))
    assert call(http, "POST", "/dataset/scan", json={"root": str(lora_dir / "train")}).status_code == 200
    fake.shared.opts.lora_bakery_compare_presets_file = str(presets)  # read live, no restart
    res = call(http, "POST", "/compare/presets", json={"path": str(presets), "text": "A:" + ",".join(["1"] * 17)})
    assert res.status_code == 200 and presets.is_file()
    assert call(http, "POST", "/compare/presets", json={"path": str(presets) + ".x", "text": ""}).status_code == 403
    other = make_dataset(tmp_path / "elsewhere/train")
    assert call(http, "POST", "/dataset/scan", json={"root": str(other)}).status_code == 403
    fake.shared.opts.lora_bakery_api_allowed_folders = f"/nonexistent, {tmp_path / 'elsewhere'}"
    assert call(http, "POST", "/dataset/scan", json={"root": str(other)}).status_code == 200


def test_a_folder_opened_in_the_dataset_tab_is_allowed(webui, tmp_path):
    pytest.importorskip("gradio")
    from lora_bakery.extension.ui.dataset.folder import scan_outputs

    start, _ = webui
    http, _ = start()
    root = make_dataset(tmp_path / "opened/train")
    assert call(http, "POST", "/dataset/scan", json={"root": str(root)}).status_code == 403
    scan_outputs(str(root))  # the person at the webui pressed Scan
    assert call(http, "POST", "/dataset/scan", json={"root": str(root)}).status_code == 200
    assert call(http, "POST", "/dataset/scan", json={"root": str(tmp_path)}).status_code == 403
