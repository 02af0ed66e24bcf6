"""The /bakery/v1 routes on a real FastAPI app, through fastapi's TestClient."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI
from PIL import Image

import lora_bakery
from lora_bakery.extension import api
from lora_bakery.extension.jobs import JobQueue
from tests.fakes.http import api_client

TIMEOUT = 20


@pytest.fixture
def setup():
    jobs = JobQueue()
    app = FastAPI()
    api.mount(app, jobs, host_name="diffusers")
    return jobs, api_client(app)


def test_health(setup):
    _, client = setup
    res = client.get("/bakery/v1/health")
    assert res.status_code == 200
    body = res.json()
    assert body["ok"] is True and body["version"] == lora_bakery.__version__ and body["host"] == "diffusers"
    assert isinstance(body["features"], dict)
    for value in body["features"].values():
        assert set(value) == {"ok", "detail"}


def test_jobs_list_get_and_unknown_id(setup):
    jobs, client = setup
    done = jobs.run("Tag images", lambda ctx: {"tagged": 3})
    res = client.get("/bakery/v1/jobs")
    assert res.status_code == 200
    assert res.json()["current"] is None
    assert [j["id"] for j in res.json()["jobs"]] == [done.id]
    one = client.get(f"/bakery/v1/jobs/{done.id}").json()
    assert one["status"] == "done" and one["result"] == {"tagged": 3} and one["name"] == "Tag images"
    for method, url in (("get", "/bakery/v1/jobs/nope"), ("post", "/bakery/v1/jobs/nope/interrupt")):
        res = getattr(client, method)(url)
        assert res.status_code == 404
        assert "nope" in res.json()["detail"]


def test_interrupt_a_running_job_over_http(setup):
    jobs, client = setup
    started = threading.Event()

    def bake(ctx):
        ctx.begin(100000, "Baking")
        while not ctx.interrupted:
            started.set()
            ctx.step(1)
        return "saved partial"

    job = jobs.submit("Bake", bake)
    assert started.wait(TIMEOUT)
    listing = client.get("/bakery/v1/jobs").json()
    assert listing["current"] == job.id
    res = client.post(f"/bakery/v1/jobs/{job.id}/interrupt")
    assert res.status_code == 200 and res.json()["interrupted"] is True
    assert job.wait(TIMEOUT)
    body = client.get(f"/bakery/v1/jobs/{job.id}").json()
    assert body["status"] == "interrupted" and body["result"] == "saved partial"
    again = client.post(f"/bakery/v1/jobs/{job.id}/interrupt").json()
    assert again["interrupted"] is False  # already finished


def test_task_ids_with_parentheses_and_preview_png(setup):
    jobs, client = setup

    def fn(ctx):
        ctx.preview(Image.new("RGB", (8, 4), (255, 0, 0)))

    jobs.run("Reg images", fn, job_id="task(abc123)")
    res = client.get("/bakery/v1/jobs/task(abc123)/preview")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    assert res.headers["x-preview-seq"] == "1"
    import io

    assert Image.open(io.BytesIO(res.content)).size == (8, 4)
    jobs.run("no preview", lambda ctx: None, job_id="task(none)")
    assert client.get("/bakery/v1/jobs/task(none)/preview").status_code == 404


def test_mount_twice_replaces_routes(setup):
    """A1111 runs on_app_started again after every Reload UI, with a new queue."""
    _, client = setup
    app = client.app
    new_jobs = JobQueue()
    new_jobs.run("after reload", lambda ctx: None, job_id="fresh")
    api.mount(app, new_jobs, host_name="a1111")
    routes = [(r.path, tuple(sorted(r.methods or ()))) for r in app.router.routes if r.path.startswith("/bakery/")]
    assert len(routes) == len(set(routes)), "mounting again must replace routes, not add them"
    paths = {path for path, _ in routes}
    core = {"/bakery/v1/health", "/bakery/v1/jobs", "/bakery/v1/jobs/{job_id}", "/bakery/v1/jobs/{job_id}/interrupt"}
    assert core <= paths, sorted(paths)
    assert client.get("/bakery/v1/health").json()["host"] == "a1111"
    assert [j["id"] for j in client.get("/bakery/v1/jobs").json()["jobs"]] == ["fresh"]
