"""The pure parts of the API gates: path resolution, the allow-list, names, credentials, exposure, host facts."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from lora_bakery.extension import allowed_folders
from lora_bakery.extension.allowed_folders import AllowList, BadName, PathNotAllowed, check_name, resolve
from lora_bakery.extension.api_gates import ApiGates, check_basic, exposure, is_loopback, parse_api_auth
from tests.fakes.webui import installed_fake_webui


def header(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_resolve_follows_dotdot_symlinks_base_and_both_tilde_forms(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    assert resolve(str(tmp_path / "link/new/../x")) == [(tmp_path / "real/x").resolve()]
    assert resolve("a/../b", base=tmp_path) == [(tmp_path / "b").resolve()]
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert resolve("~/d") == [(tmp_path / "~/d").resolve(), (tmp_path / "home/d").resolve()]
    for bad in ("", "  ", "a\x00b"):
        with pytest.raises(BadName):
            resolve(bad)


def test_allow_list_is_per_component_and_takes_files(tmp_path):
    allow = AllowList([tmp_path / "data", tmp_path / "one.txt"], session=lambda: [], hint="HINT")
    assert allow.check(str(tmp_path / "data/sub/x"), "root") == tmp_path / "data/sub/x"
    assert allow.check(str(tmp_path / "data"), "root") == tmp_path / "data"
    assert allow.check(str(tmp_path / "one.txt"), "path") == tmp_path / "one.txt"
    for outside in ("data-evil/x", "data/../other", "one.txt.bak", "."):
        with pytest.raises(PathNotAllowed, match="HINT") as info:
            allow.check(str(tmp_path / outside), "root")
        assert "root:" in str(info.value)


def test_configured_folders_are_read_at_each_check(tmp_path):
    setting = {"value": ""}
    allow = AllowList(configured=lambda: allowed_folders.split_folders(setting["value"]), session=lambda: [])
    assert not allow.allows(tmp_path / "x")
    setting["value"] = f"/nowhere,\n {tmp_path} \n"
    assert allow.allows(tmp_path / "x")
    assert allowed_folders.split_folders(["a, b", "c\nd"]) == ["a", "b", "c", "d"]


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "../x", "a\\b", "/abs", "C:x", "a\x00"])
def test_names_that_would_leave_their_folder(name):
    with pytest.raises(BadName):
        check_name(name, "backup")


@pytest.mark.parametrize("name", ["20240101-120000-add-triggers", ".txt", "my lora v2", "a..b"])
def test_plain_names_pass(name):
    assert check_name(name, "name") == name


def test_remember_keeps_real_folders_only(tmp_path):
    allowed_folders.forget_session()
    try:
        allowed_folders.remember(None, "", "   ", "/", str(tmp_path / "a/../b"), tmp_path / "b")
        assert allowed_folders.session_folders() == [(tmp_path / "b").resolve()]
        assert AllowList().allows((tmp_path / "b/c").resolve())
    finally:
        allowed_folders.forget_session()


def test_credentials_as_a1111_reads_api_auth():
    assert parse_api_auth("u1:p1,u2:p2") == {"u1": "p1", "u2": "p2"}
    assert parse_api_auth("u:p:q,nocolon,") == {"u": "p:q"}
    assert parse_api_auth(None) == {}
    creds = {"u1": "p1", "ü": "pässword"}
    assert check_basic(header("u1", "p1"), creds) and check_basic(header("ü", "pässword"), creds)
    assert check_basic(header("u1", "p1").replace("Basic", "basic"), creds)
    for bad in (None, "", "Basic", "Basic %%%", header("u1", "p2"), header("u2", "p1"), header("u1", "p1")[:-2],
                "Bearer " + header("u1", "p1").split()[1], "Basic " + base64.b64encode(b"u1p1").decode()):
        assert not check_basic(bad, creds), bad


def test_a_malformed_api_auth_locks_instead_of_opening():
    facts = SimpleNamespace(api_auth="nocolon", listen=False, share=False, ngrok=False, server_name=None,
                            insecure_extension_access=False, data_folders=())
    gates = ApiGates.for_webui(facts)
    assert gates.auth_required and gates.credentials == {}
    assert gates.refusal("GET", "/health", {}, header("nocolon", ""))[0] == 401


@pytest.mark.parametrize("host,loop", [("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("::1", True),
                                       ("[::1]", True), ("0.0.0.0", False), ("::", False), ("192.168.0.2", False),
                                       ("my-box", False), ("example.com", False)])
def test_loopback(host, loop):
    assert is_loopback(host) is loop


def test_exposure_names_the_flag():
    def facts(**kw):
        return SimpleNamespace(**{"share": False, "listen": False, "ngrok": False, "server_name": None, **kw})

    assert exposure(facts()) is None and exposure(facts(server_name="localhost")) is None
    assert exposure(facts(listen=True)) == "--listen" and exposure(facts(share=True)) == "--share"
    assert exposure(facts(ngrok=True)) == "--ngrok"
    assert exposure(facts(server_name="10.0.0.5")) == "--server-name 10.0.0.5"


def test_a1111_server_facts_from_cmd_opts_and_options(tmp_path):
    from lora_bakery.extension.host.a1111_server import server_facts

    with installed_fake_webui() as webui:
        assert server_facts().api_auth is None and not server_facts().listen
        opts = webui.shared.cmd_opts
        opts.api_auth, opts.listen, opts.server_name, opts.ngrok = "u:p", True, "0.0.0.0", "tok"
        opts.enable_insecure_extension_access, opts.lora_dir = True, str(tmp_path / "Lora")
        webui.shared.opts.outdir_samples = str(tmp_path / "out")
        facts = server_facts()
        assert (facts.api_auth, facts.listen, facts.server_name, facts.ngrok) == ("u:p", True, "0.0.0.0", True)
        assert facts.insecure_extension_access and not facts.share
        from modules import paths_internal

        assert {str(tmp_path / "Lora"), paths_internal.default_output_dir, str(tmp_path / "out"),
                "outputs/txt2img-images"} <= set(facts.data_folders)
    assert Path(paths_internal.default_output_dir).name == "outputs"
