"""The /bakery/v1 gates of ``bakery app``: ``--auth``/``--auth-file``, ``--listen``, ``--allow``, through the
same parser and app builder the command uses, and a real server where the credentials also guard the UI."""

from __future__ import annotations

import base64
import http.cookiejar
import socket
import urllib.error
import urllib.request

import pytest
from fastapi import FastAPI
from PIL import Image

from lora_bakery.cli import build_parser
from lora_bakery.cli import main as cli_main
from lora_bakery.cli.app import gates_from_args
from lora_bakery.extension.api_access import ROUTES, WRITE
from tests.extension.dataset_ops.helpers import make_dataset
from tests.extension.test_api_security import basic, call, read_samples, registered
from tests.fakes.http import api_client

pytestmark = pytest.mark.usefixtures("fresh_session_folders")


def app_for(*argv: str):
    """(client, app) for ``bakery app ARGV``: its gates on the standalone app's routes (no server)."""
    pytest.importorskip("gradio")
    from lora_bakery.extension.app import make_context, mount_api

    gates = gates_from_args(build_parser().parse_args(["app", *argv]))
    ctx = make_context(None)
    ctx.jobs.run("seen", lambda job: job.preview(Image.new("RGB", (4, 4))), job_id="seen")
    app = FastAPI()
    assert mount_api(app, ctx, gates)
    return api_client(app), app


def test_auth_guards_every_route(api_folders):
    allowed, _ = api_folders
    http, app = app_for("--auth", "u:p,v:q", "--auth", "w:r", "--allow", str(allowed))
    assert set(registered(app)) == set(ROUTES)
    for method, route in registered(app):
        for headers in ({}, basic("u", "q"), basic("x", "p")):
            res = call(http, method, route, headers)
            assert res.status_code == 401 and res.headers["www-authenticate"].startswith("Basic"), (route, headers)
    for (method, route), kwargs in read_samples(allowed).items():
        assert call(http, method, route, basic("v", "q"), **kwargs).status_code == 200, route
    assert call(http, "GET", "/health", basic("w", "r")).status_code == 200


def test_auth_file(api_folders, tmp_path):
    secrets = tmp_path / "auth.txt"
    secrets.write_text("alice:one\nbob:two, carol:th:ree\n\n", encoding="utf-8")
    http, _ = app_for("--auth-file", str(secrets))
    for user, password in (("alice", "one"), ("bob", "two"), ("carol", "th:ree")):
        assert call(http, "GET", "/health", basic(user, password)).status_code == 200
    assert call(http, "GET", "/health").status_code == 401


def test_listen_without_auth_refuses_writes_and_answers_reads(api_folders):
    allowed, _ = api_folders
    http, app = app_for("--listen", "--allow", str(allowed))
    for method, route in registered(app):
        if ROUTES[(method, route)].mode == WRITE:
            res = call(http, method, route, json={"root": str(allowed / "train")})
            assert res.status_code == 403 and "--auth" in res.json()["detail"], route
            assert "--listen" in res.json()["detail"]
    for (method, route), kwargs in read_samples(allowed).items():
        assert call(http, method, route, **kwargs).status_code == 200, route
    http, _ = app_for("--listen", "--auth", "u:p", "--allow", str(allowed))
    res = call(http, "POST", "/dataset/apply", basic("u", "p"), json={
        "root": str(allowed / "train"), "op": "add-triggers", "params": {"triggers": "chara"}})
    assert res.status_code == 200, res.text
    http, _ = app_for("--share", "--allow", str(allowed))
    assert call(http, "POST", "/dataset/undo", json={"root": str(allowed / "train")}).status_code == 403


def test_allow_is_repeatable_and_everything_else_is_403(api_folders, tmp_path):
    allowed, outside = api_folders
    http, _ = app_for("--allow", str(allowed / "train"), "--allow", str(tmp_path / "more"))
    assert call(http, "POST", "/dataset/scan", json={"root": str(allowed / "train")}).status_code == 200
    res = call(http, "POST", "/dataset/scan", json={"root": str(outside / "train")})
    assert res.status_code == 403 and "--allow DIR" in res.json()["detail"]
    res = call(http, "POST", "/dataset/scan", json={"root": str(allowed / "train/../../outside/train")})
    assert res.status_code == 403
    make_dataset(tmp_path / "more/train")
    assert call(http, "POST", "/dataset/scan", json={"root": str(tmp_path / "more/train")}).status_code == 200


def test_bad_credentials_options_are_errors(tmp_path, capsys):
    assert cli_main(["app", "--auth", "nocolon"]) == 2
    assert "--auth: give USER:PASS" in capsys.readouterr().err
    assert cli_main(["app", "--auth-file", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the credentials file" in capsys.readouterr().err
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    assert cli_main(["app", "--auth-file", str(tmp_path / "empty.txt")]) == 2
    assert "no user:password entry" in capsys.readouterr().err


def test_launch_with_auth_guards_the_ui_and_the_api():
    pytest.importorskip("gradio")
    from lora_bakery.extension.api_gates import ApiGates
    from lora_bakery.extension.app import launch

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def status(path: str, headers: dict | None = None, data: bytes | None = None) -> int:
        try:
            with opener.open(urllib.request.Request(base + path, headers=headers or {}, data=data), timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    demo = launch(None, port, block=False, gates=ApiGates.for_app({"u": "p"}))
    try:
        assert status("/bakery/v1/health") == 401
        token = base64.b64encode(b"u:p").decode()
        assert status("/bakery/v1/health", {"Authorization": f"Basic {token}"}) == 200
        assert status("/config") == 401  # gradio's own login guards the UI (3.41 and 4.x)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert status("/login", form, b"username=u&password=wrong") == 400
        assert status("/login", form, b"username=u&password=p") == 200
        assert status("/config") == 200
    finally:
        demo.close()
