"""The /bakery/v1/compare routes on a real FastAPI app: epochs, presets, norms, bake, grid (job)."""

from __future__ import annotations

import time

from fastapi import FastAPI

from lora_bakery.extension import api
from lora_bakery.extension.jobs import JobQueue
from tests.fakes.http import api_client, local_gates

BASE = "/bakery/v1/compare"


def test_compare_routes(sd15_host, locon_run, tmp_path):
    jobs = JobQueue()
    app = FastAPI()
    api.mount(app, jobs, host_factory=lambda: sd15_host, host_name="diffusers",
              gates=local_gates(tmp_path, locon_run[0].parent))
    http = api_client(app)
    folder = str(locon_run[0].parent)
    epochs = http.get(f"{BASE}/epochs", params={"folder": folder}).json()["epochs"]
    assert [e["label"] for e in epochs] == ["e1", "e2", "final (e3)"]
    assert http.get(f"{BASE}/epochs", params={"folder": str(tmp_path / "nope")}).status_code == 400
    saved = http.post(f"{BASE}/presets", json={"path": str(tmp_path / "p.txt"), "text": "A:" + ",".join(["1"] * 17)})
    assert saved.json()["saved"] == ["A"]
    assert "A" in http.get(f"{BASE}/presets", params={"path": str(tmp_path / "p.txt")}).json()["presets"]
    norms = http.post(f"{BASE}/norms", json={"folder": folder, "png": str(tmp_path / "n.png")}).json()
    assert norms["labels"][-1] == "final (e3)" and (tmp_path / "n.png").is_file()
    baked = http.post(f"{BASE}/bake", json={"source": str(locon_run[-1]), "blocks": "OUTD",
                                            "output": str(tmp_path / "outd.safetensors")})
    assert baked.status_code == 200 and baked.json()["path"].endswith("outd.safetensors")
    again = http.post(f"{BASE}/bake", json={"source": str(locon_run[-1]), "blocks": "OUTD",
                                            "output": str(tmp_path / "outd.safetensors")})
    assert again.status_code == 400 and "already exists" in again.json()["detail"]
    bad = http.post(f"{BASE}/grid", json={"spec": {"prompt": "p"}, "out": str(tmp_path / "g")})
    assert bad.status_code == 400 and "epoch axis" in bad.json()["detail"]
    spec = {"prompt": "a cat", "seed": 3, "width": 64, "height": 64, "steps": 1,
            "x": {"kind": "epoch", "values": [str(locon_run[0]), str(locon_run[-1])]}}
    res = http.post(f"{BASE}/grid", json={"spec": spec, "out": str(tmp_path / "g")}).json()
    assert res["cells"] == 2
    deadline = time.time() + 300
    while time.time() < deadline:
        job = http.get(f"/bakery/v1/jobs/{res['job_id']}").json()
        if job["status"] in ("done", "failed", "interrupted"):
            break
        time.sleep(0.5)
    assert job["status"] == "done", job
    assert (tmp_path / "g" / "grid.png").is_file()
