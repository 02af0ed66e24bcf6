"""The /bakery/v1/reg routes on a real FastAPI app: preview, suggest, generate (job), list, re-roll, delete."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from lora_bakery.extension import api
from lora_bakery.extension.host.a1111 import A1111Host
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.http import api_client, local_gates
from tests.fakes.webui import installed_fake_webui

from .helpers import make_training, tiny_settings

BASE = "/bakery/v1/reg"


@pytest.fixture
def client(monkeypatch, tmp_path):
    with installed_fake_webui() as webui:
        webui.load(tiny_checkpoint("sd15"), "sd1")
        monkeypatch.setattr(webui.processing, "_weights_checksum", lambda sd_model: 0.0)  # see test_generate_a1111
        jobs = JobQueue()
        app = FastAPI()
        api.mount(app, jobs, host_factory=A1111Host, gates=local_gates(tmp_path))
        yield jobs, api_client(app), webui


def test_preview_generate_review(client, tmp_path):
    jobs, http, webui = client
    root = make_training(tmp_path / "train")
    settings = tiny_settings().to_dict()
    assert http.post(f"{BASE}/suggest", json={"source": str(root)}).json() == {"remove": ["chara", "outfit1"]}
    res = http.post(f"{BASE}/preview", json={"source": str(root), "settings": settings})
    body = res.json()
    assert res.status_code == 200 and body["images"] == 3 and body["output"] == str((tmp_path / "reg").resolve())
    assert body["rows"][1]["prompt"] == "1girl, red_hair, smile" and body["sizes"] == {"32x96": 1, "64x64": 2}
    assert {s["source"] for s in body["skipped"]} == {"10_chara/c.png", "10_chara/d.png"}

    res = http.post(f"{BASE}/generate", json={"source": str(root), "settings": settings})
    assert res.status_code == 200 and res.json()["planned"] == 3
    job = jobs.get(res.json()["job_id"])
    assert job.wait(60) and job.status == "done", job.error
    assert len(job.result["generated"]) == 3 and len(webui.processing.calls) == 3
    out = body["output"]
    listed = http.get(f"{BASE}/images", params={"output": out}).json()["images"]
    assert [r["path"] for r in listed] == ["10_chara/a.png", "10_chara/b.png", "3_outfit/e.png"]

    res = http.post(f"{BASE}/reroll", json={"output": out, "paths": ["10_chara/a.png"], "seeds": [42]})
    job = jobs.get(res.json()["job_id"])
    assert job.wait(60) and job.status == "done" and job.result["seeds"] == {"10_chara/a.png": 42}
    res = http.post(f"{BASE}/delete", json={"output": out, "paths": ["3_outfit/e.png"]})
    assert res.status_code == 200 and res.json()["changed"] == ["3_outfit/e.png"]


def test_user_errors_are_400(client, tmp_path):
    _, http, _ = client
    root = make_training(tmp_path / "train")
    res = http.post(f"{BASE}/preview", json={"source": str(tmp_path / "nowhere")})
    assert res.status_code == 400 and "does not exist" in res.json()["detail"]
    res = http.post(f"{BASE}/preview", json={"source": str(root), "settings": {"bogus": 1}})
    assert res.status_code == 400 and "unknown reg setting" in res.json()["detail"]
    res = http.post(f"{BASE}/generate", json={"source": str(root), "output": str(root / "reg")})
    assert res.status_code == 400 and "inside the training folder" in res.json()["detail"]
    res = http.get(f"{BASE}/images", params={"output": str(tmp_path / "none")})
    assert res.status_code == 400
