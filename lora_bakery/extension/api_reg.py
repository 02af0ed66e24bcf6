"""HTTP routes under ``/bakery/v1/reg``: preview a reg plan, generate (a job), list, re-roll (a job), delete.

``settings`` holds :class:`~lora_bakery.extension.reg.settings.RegSettings` fields by name (the same
names as the manifest's ``settings`` and ``bakery reg``'s options). Generation and re-rolls use the
host's model, so they run on the job queue and answer with a job id at once (follow it with
``GET /bakery/v1/jobs/{id}``; ``POST /bakery/v1/jobs/{id}/interrupt`` stops it after the images in
flight, keeping every whole one). A user mistake is a 400 with a readable ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from lora_bakery.extension.jobs import JobQueue

#: Exceptions that are the caller's mistake: answered 400 with the message.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError)


class PlanBody(BaseModel):
    """A training folder, the reg folder (default beside it) and the settings."""

    source: str
    output: str | None = None
    settings: dict = {}
    limit: int | None = 200


class GenerateBody(PlanBody):
    """``existing``: ``resume`` (keep valid images), ``overwrite`` or ``error``."""

    existing: str = "resume"


class SourceBody(BaseModel):
    source: str


class ImagesBody(BaseModel):
    """Images of a reg folder, as paths relative to it (as listed)."""

    output: str
    paths: list[str]
    seeds: list[int] | None = None


def _user_error(exc: BaseException) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc) or type(exc).__name__)


def create_reg_router(jobs: JobQueue, host_factory: Callable[[], Any] | None = None, gates: Any = None) -> APIRouter:
    """The ``/reg`` routes (mounted inside the ``/bakery/v1`` router of ``api.py``).

    Args:
        jobs (`JobQueue`): where generation and re-rolls run.
        host_factory (`Callable[[], Host]`, *optional*): the model; ``None`` answers 503 on routes that need it.
        gates (`ApiGates`, *optional*): checks the reg folder a plan derives from the source (403 outside
            the allowed folders); the request's own paths were checked before the handler runs.

    Returns:
        `APIRouter`: ``POST /reg/preview``, ``POST /reg/suggest``, ``POST /reg/generate``, ``GET /reg/images``,
        ``POST /reg/reroll``, ``POST /reg/delete``.
    """
    router = APIRouter(prefix="/reg")

    def host() -> Any:
        if host_factory is None:
            raise HTTPException(status_code=503, detail="no model host here: reg images need a loaded model")
        return host_factory()

    def allowed_output(planned: Any, body: PlanBody) -> None:
        if gates is not None and not body.output:
            gates.require_path(str(planned.output), "output (the default reg folder beside the source)")

    @router.post("/preview")
    def preview(body: PlanBody) -> dict[str, Any]:
        from lora_bakery.extension.reg import RegSettings, plan_reg
        from lora_bakery.extension.reg.report import plan_dict

        try:
            planned = plan_reg(body.source, body.output, RegSettings.from_dict(body.settings))
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc
        allowed_output(planned, body)
        return plan_dict(planned, body.limit)

    @router.post("/suggest")
    def suggest(body: SourceBody) -> dict[str, Any]:
        from lora_bakery.extension.reg.report import suggest_remove

        try:
            return {"remove": suggest_remove(body.source)}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/generate")
    def generate(body: GenerateBody) -> dict[str, Any]:
        from lora_bakery.extension.reg import RegSettings, plan_reg
        from lora_bakery.extension.reg.report import run_generation

        try:  # check the request before queueing, so mistakes answer 400 at once
            settings = RegSettings.from_dict(body.settings)
            planned = plan_reg(body.source, body.output, settings)
            if body.existing not in ("resume", "overwrite", "error"):
                raise ValueError(f"existing: must be resume, overwrite or error, got {body.existing!r}")
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc
        allowed_output(planned, body)
        job = jobs.submit("Reg images", run_generation, host(), body.source, str(planned.output), settings,
                          body.existing)
        return {"job_id": job.id, "output": str(planned.output), "planned": len(planned.items)}

    @router.get("/images")
    def images(output: str) -> dict[str, Any]:
        from lora_bakery.extension.reg.review import list_images

        try:
            return {"images": [row.__dict__ for row in list_images(output)]}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/reroll")
    def reroll(body: ImagesBody) -> dict[str, Any]:
        from lora_bakery.extension.reg.report import run_reroll

        job = jobs.submit("Reg images: re-roll", run_reroll, host(), body.output, body.paths, body.seeds)
        return {"job_id": job.id}

    @router.post("/delete")
    def delete(body: ImagesBody) -> dict[str, Any]:
        from lora_bakery.extension.reg.report import run_delete

        try:
            return run_delete(body.output, body.paths)
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    return router
