"""HTTP routes under ``/bakery/v1/dataset``: scan, preview an operation, apply it, undo, backups, tag.

The operations are the Dataset tab's and ``bakery dataset``'s (``dataset_ops.registry``): ``op`` is
an operation name and ``params`` its options, exactly as the CLI's ``--json`` output shows them.
Quick operations answer directly; tagging (and any operation with ``"as_job": true``) runs on the
job queue and answers with a job id (follow it with ``GET /bakery/v1/jobs/{id}``; its ``result`` is
the preview, plus ``backup`` when applied). A user mistake (missing folder, bad option, nothing to
undo) is a 400 with a readable ``detail``; nothing here touches the model.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from lora_bakery.extension.jobs import JobQueue

#: Exceptions that are the caller's mistake: answered 400 with the message.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, RuntimeError)


class RootBody(BaseModel):
    """A training folder."""

    root: str


class OpBody(BaseModel):
    """An operation on a training folder."""

    root: str
    op: str
    params: dict = {}
    as_job: bool = False


class UndoBody(BaseModel):
    """Undo the newest applied change, or the backup named ``backup``."""

    root: str
    backup: str | None = None
    force: bool = False


class TagBody(BaseModel):
    """Tag a folder; ``params`` as ``TagSettings`` fields (``models``, ``general_threshold`` …)."""

    root: str
    params: dict = {}
    apply: bool = True


def _user_error(exc: BaseException) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc) or type(exc).__name__)


def _run_op(ctx: Any, root: str, op: str, params: dict, apply: bool) -> dict[str, Any]:
    """Job body: preview (and apply) an operation; returns the JSON preview (+ ``backup``)."""
    from lora_bakery.extension.dataset_ops import registry

    done = registry.preview(root, op, params, progress=ctx)
    out = registry.preview_dict(done)
    if apply and done.plan.changes and not done.extra.get("interrupted"):
        _, record = registry.apply(root, op, params, planned=done)
        out["backup"] = record.path.name
    return out


def create_dataset_router(jobs: JobQueue) -> APIRouter:
    """The ``/dataset`` routes (mounted inside the ``/bakery/v1`` router of ``api.py``).

    Args:
        jobs (`JobQueue`): where tagging and other long operations run.

    Returns:
        `APIRouter`: ``POST /dataset/scan``, ``POST /dataset/buckets``, ``POST /dataset/preview``,
        ``POST /dataset/apply``, ``POST /dataset/undo``, ``GET /dataset/backups``, ``POST /dataset/tag``,
        ``GET /dataset/operations``.
    """
    router = APIRouter(prefix="/dataset")

    @router.get("/operations")
    def operations() -> dict[str, Any]:
        from lora_bakery.extension.dataset_ops.registry import OPERATIONS

        return {"operations": {name: text for name, (_fn, text) in OPERATIONS.items()}}

    @router.post("/scan")
    def scan_root(body: RootBody) -> dict[str, Any]:
        from lora_bakery.extension.dataset.scan import scan
        from lora_bakery.extension.dataset_ops import registry, report

        try:
            return report.scan_dict(scan(registry._root(body.root)))
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/buckets")
    def buckets(body: OpBody) -> dict[str, Any]:
        from lora_bakery.extension.dataset.scan import scan
        from lora_bakery.extension.dataset_ops import registry

        try:
            return registry.bucket_facts(scan(registry._root(body.root)), body.params)[1]
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    def op_route(body: OpBody, apply: bool) -> dict[str, Any]:
        from lora_bakery.extension.dataset_ops import registry

        if body.op not in registry.OPERATIONS:
            raise HTTPException(status_code=404, detail=f"unknown operation {body.op!r}; GET /bakery/v1/dataset/operations")
        if body.as_job or body.op == "tag":
            job = jobs.submit(f"Dataset: {body.op}", _run_op, body.root, body.op, body.params, apply,
                              exclusive=body.op in ("tag", "masks"))
            return {"job_id": job.id}
        try:
            return _run_op(None, body.root, body.op, body.params, apply)
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/preview")
    def preview(body: OpBody) -> dict[str, Any]:
        return op_route(body, apply=False)

    @router.post("/apply")
    def apply(body: OpBody) -> dict[str, Any]:
        return op_route(body, apply=True)

    @router.post("/undo")
    def undo(body: UndoBody) -> dict[str, Any]:
        from lora_bakery.extension.dataset.safety import record_dict
        from lora_bakery.extension.dataset_ops import registry

        try:
            return record_dict(registry.undo(body.root, body.backup, force=body.force))
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.get("/backups")
    def backups(root: str) -> dict[str, Any]:
        from lora_bakery.extension.dataset_ops import registry

        try:
            return {"backups": registry.backup_rows(root)}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/tag")
    def tag(body: TagBody) -> dict[str, Any]:
        job = jobs.submit("Dataset: tag", _run_op, body.root, "tag", body.params, body.apply, exclusive=True)
        return {"job_id": job.id}

    return router
