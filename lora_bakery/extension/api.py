"""HTTP routes under ``/bakery/v1``: health, the job list, one job, interrupt, the latest preview.

Mounted on A1111's FastAPI app from ``on_app_started`` (fastapi 0.94) and on the standalone
app's (0.104+). Routes are plain ``def`` handlers (FastAPI runs them in its thread pool) and only
read the ``JobQueue``; they never touch the model, so they answer while a bake runs. Every route
passes ``api_gates`` first (credentials, writes when listening, allowed folders; see the route
table in ``api_access``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import Response

import lora_bakery
from lora_bakery.extension.api_compare import create_compare_router
from lora_bakery.extension.api_dataset import create_dataset_router
from lora_bakery.extension.api_gates import ApiGates
from lora_bakery.extension.api_reg import create_reg_router
from lora_bakery.extension.jobs import JobQueue

PREFIX = "/bakery/v1"


def _features() -> dict[str, Any]:
    """``deps.feature_status()`` as JSON objects; a broken check is reported, never raised."""
    try:
        from lora_bakery.deps import feature_status

        return {name: {"ok": bool(ok), "detail": str(detail)} for name, (ok, detail) in feature_status().items()}
    except Exception as exc:  # noqa: BLE001 - /health must answer even if deps.py fails
        return {"_error": {"ok": False, "detail": f"{type(exc).__name__}: {exc}"}}


def gate(gates: ApiGates) -> Callable[..., Any]:
    """The dependency every ``/bakery/v1`` route runs first: ``gates.refusal`` as 401/403/400.

    It reads the request as sent (query parameters, then the JSON body FastAPI has already read
    and cached) and the route as registered (``scope["route"]``, set by fastapi 0.94 and 0.104+).
    """

    async def check(request: Request) -> None:
        route = str(getattr(request.scope.get("route"), "path", request.url.path))
        query = request.query_params
        data: dict[str, Any] = {}
        for key in query.keys():  # a repeated parameter: every value is checked
            values = query.getlist(key)
            data[key] = values[0] if len(values) == 1 else values
        if request.method not in ("GET", "HEAD"):
            try:
                body = await request.json()
            except Exception:  # noqa: BLE001 - not JSON: the route's own validation answers 422
                body = None
            if isinstance(body, dict):
                data.update(body)
        refused = gates.refusal(request.method, route.removeprefix(PREFIX), data, request.headers.get("authorization"))
        if refused:
            status, message = refused
            raise HTTPException(status_code=status, detail=message,
                                headers={"WWW-Authenticate": "Basic"} if status == 401 else None)

    return check


def create_router(jobs: JobQueue, host_name: str = "a1111", host_factory: Callable[[], Any] | None = None,
                  gates: ApiGates | None = None) -> APIRouter:
    """The ``/bakery/v1`` routes over one job queue, each behind the gates.

    Args:
        jobs (`JobQueue`): the queue whose jobs are listed and interrupted.
        host_name (`str`, defaults to ``"a1111"``): reported by ``/health`` (``"a1111"``,
            ``"forge"``, ``"diffusers"``).
        host_factory (`Callable[[], Host]`, *optional*): for the routes that need the model.
        gates (`ApiGates`, *optional*): credentials, exposure and allowed folders; the default
            (no credentials, loopback) allows only the folders opened in the tabs.

    Returns:
        `APIRouter`: ``GET /health``, ``GET /jobs``, ``GET /jobs/{id}``, ``POST /jobs/{id}/interrupt``,
        ``GET /jobs/{id}/preview`` (PNG).
    """
    gates = gates if gates is not None else ApiGates()
    router = APIRouter(prefix=PREFIX, tags=["LoRA Bakery"], dependencies=[Depends(gate(gates))])
    router.host_factory = host_factory  # type: ignore[attr-defined]

    def find(job_id: str) -> Any:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(status_code=404, detail=f"No job with id {job_id!r} (finished jobs are kept for a while only).")
        return job

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": lora_bakery.__version__, "host": host_name, "features": _features()}

    @router.get("/jobs")
    def list_jobs() -> dict[str, Any]:
        current = jobs.current()
        return {"current": current.id if current else None, "jobs": [job.snapshot() for job in jobs.list()]}

    @router.get("/jobs/{job_id}")
    def get_job(job_id: str) -> dict[str, Any]:
        return find(job_id).snapshot()

    @router.post("/jobs/{job_id}/interrupt")
    def interrupt_job(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        accepted = jobs.interrupt(job.id)
        return {"interrupted": accepted, "job": job.snapshot()}

    @router.get("/jobs/{job_id}/preview")
    def job_preview(job_id: str) -> Response:
        job = find(job_id)
        image = job.preview
        if image is None or not hasattr(image, "save"):
            raise HTTPException(status_code=404, detail=f"Job {job_id!r} has no preview image yet.")
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return Response(content=buf.getvalue(), media_type="image/png", headers={"X-Preview-Seq": str(job.preview_seq)})

    router.include_router(create_dataset_router(jobs))
    router.include_router(create_reg_router(jobs, host_factory, gates))
    router.include_router(create_compare_router(jobs, host_factory, gates))
    return router


def mount(app: FastAPI, jobs: JobQueue, host_factory: Callable[[], Any] | None = None, *, host_name: str = "a1111",
          gates: ApiGates | None = None) -> APIRouter:
    """Add the routes to ``app``, replacing ours from an earlier call.

    A1111 calls ``on_app_started`` again after every "Reload UI" on the same app (with a freshly
    executed script), so routes from the previous call are removed first instead of duplicated.

    Args:
        app (`FastAPI`): the webui's or the standalone app's FastAPI application.
        jobs (`JobQueue`): the queue to expose.
        host_factory (`Callable[[], Host]`, *optional*): see ``create_router``.
        host_name (`str`, defaults to ``"a1111"``): reported by ``/health``.
        gates (`ApiGates`, *optional*): see ``create_router``.

    Returns:
        `APIRouter`: the router that was included.
    """
    app.router.routes[:] = [r for r in app.router.routes if not str(getattr(r, "path", "")).startswith(PREFIX + "/")]
    router = create_router(jobs, host_name=host_name, host_factory=host_factory, gates=gates)
    app.include_router(router)
    return router
