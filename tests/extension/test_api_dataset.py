"""The /bakery/v1/dataset routes on a real FastAPI app and real files: scan, preview, apply, undo, tag (job)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from lora_bakery.extension import api
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.tagger.tiny import write_tiny_tagger
from tests.extension.dataset_ops.helpers import make_colour_dataset, make_dataset, tree_digest
from tests.fakes.http import api_client, local_gates

BASE = "/bakery/v1/dataset"


@pytest.fixture
def client(tmp_path):
    jobs = JobQueue()
    app = FastAPI()
    api.mount(app, jobs, host_name="diffusers", gates=local_gates(tmp_path))
    return jobs, api_client(app)


def test_scan_preview_apply_undo(client, tmp_path):
    jobs, http = client
    root = make_dataset(tmp_path / "train")
    before = tree_digest(root)
    res = http.post(f"{BASE}/scan", json={"root": str(root)})
    assert res.status_code == 200 and res.json()["images"] == 10
    assert "add-triggers" in http.get(f"{BASE}/operations").json()["operations"]
    res = http.post(f"{BASE}/preview", json={"root": str(root), "op": "add-triggers", "params": {"triggers": "chara"}})
    body = res.json()
    assert res.status_code == 200 and body["changes"] == 4 and body["rows"][0]["kind"] == "write"
    assert tree_digest(root) == before
    res = http.post(f"{BASE}/apply", json={"root": str(root), "op": "add-triggers", "params": {"triggers": "chara"}})
    assert res.status_code == 200 and res.json()["backup"]
    assert (root / "10_chara/a.txt").read_text().startswith("chara, |||")
    backups = http.get(f"{BASE}/backups", params={"root": str(root)}).json()["backups"]
    assert backups[0]["op"] == "add-triggers" and backups[0]["status"] == "applied"
    res = http.post(f"{BASE}/undo", json={"root": str(root)})
    assert res.status_code == 200 and res.json()["status"] == "undone"
    assert tree_digest(root) == before
    hist = http.post(f"{BASE}/buckets", json={"root": str(root), "op": "sort-buckets", "params": {"family": "sdxl"}})
    assert hist.status_code == 200 and hist.json()["histogram"]


def test_user_errors_are_400_with_a_message(client, tmp_path):
    _, http = client
    root = make_dataset(tmp_path / "train")
    res = http.post(f"{BASE}/scan", json={"root": str(tmp_path / "nowhere")})
    assert res.status_code == 400 and "does not exist" in res.json()["detail"]
    res = http.post(f"{BASE}/preview", json={"root": str(root), "op": "replace-tags", "params": {"mapping": "x"}})
    assert res.status_code == 400 and "old=new" in res.json()["detail"]
    res = http.post(f"{BASE}/undo", json={"root": str(root)})
    assert res.status_code == 400 and "nothing to undo" in res.json()["detail"]
    assert http.post(f"{BASE}/apply", json={"root": str(root), "op": "bogus"}).status_code == 404


def test_tag_runs_as_a_job(client, tmp_path):
    jobs, http = client
    root = make_colour_dataset(tmp_path / "train")
    model = write_tiny_tagger(tmp_path / "tagger", "v3", size=32)
    res = http.post(f"{BASE}/tag", json={"root": str(root), "params": {"models": str(model), "download": False}})
    assert res.status_code == 200
    job = jobs.get(res.json()["job_id"])
    assert job.wait(60)
    snap = http.get(f"/bakery/v1/jobs/{job.id}").json()
    assert snap["status"] == "done", snap
    assert snap["result"]["extra"]["tagged"] == 4 and snap["result"]["backup"]
    assert "blue theme" in (root / "5_colours/blue.txt").read_text()
