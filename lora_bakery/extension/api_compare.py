"""HTTP routes under ``/bakery/v1/compare``: epochs, presets, block norms, bake, grids and the analyzer.

Grids and the image analyzer use the model, so they run on the job queue and answer with a job id
at once (follow ``GET /bakery/v1/jobs/{id}``; ``POST /bakery/v1/jobs/{id}/interrupt`` stops between
requests, keeping finished cells). Norms, presets, epochs and baking need no model and answer
directly. A user mistake is a 400 with a readable ``detail``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from lora_bakery.extension.jobs import JobQueue

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, FileExistsError)


class GridBody(BaseModel):
    """``spec``: :class:`~lora_bakery.extension.compare.GridSpec` fields by name; ``out``: output folder."""

    spec: dict
    out: str
    presets_file: str | None = None


class NormsBody(BaseModel):
    """A run folder, or a list of files; ``png``: where the plot goes."""

    folder: str | None = None
    files: list[str] | None = None
    png: str


class BakeBody(BaseModel):
    source: str
    blocks: str | list[float]
    output: str | None = None
    rebase_from: float | None = None
    rebase_to: float | None = None
    drop_zero_blocks: bool = False
    presets_file: str | None = None


class EffectBody(BaseModel):
    lora: str
    prompt: str
    negative_prompt: str = ""
    seed: int = 1234
    steps: int = 20
    width: int = 512
    height: int = 512
    cfg_scale: float = 7.0
    sampler: str | None = None
    blocks: list[str] | None = None
    low: float = 0.0
    high: float = 1.0
    threshold: int = 20
    out: str


class PresetsBody(BaseModel):
    path: str
    text: str


def _user_error(exc: BaseException) -> HTTPException:
    return HTTPException(status_code=400, detail=str(exc) or type(exc).__name__)


def create_compare_router(jobs: JobQueue, host_factory: Callable[[], Any] | None = None, gates: Any = None) -> APIRouter:
    """The ``/compare`` routes (mounted inside the ``/bakery/v1`` router of ``api.py``).

    ``gates`` (``ApiGates``, *optional*) checks the file a bake names itself (beside the source).

    Returns:
        `APIRouter`: ``GET /compare/epochs``, ``GET/POST /compare/presets``, ``POST /compare/norms``,
        ``POST /compare/bake``, ``POST /compare/grid`` (job), ``POST /compare/effect`` (job).
    """
    router = APIRouter(prefix="/compare")

    def host() -> Any:
        if host_factory is None:
            raise HTTPException(status_code=503, detail="no model host here: grids need a loaded model")
        return host_factory()

    @router.get("/epochs")
    def epochs(folder: str) -> dict[str, Any]:
        from lora_bakery.extension.compare import list_epochs

        try:
            return {"epochs": [{"path": str(e.path), "label": e.label, **e.summary()} for e in list_epochs(folder)]}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.get("/presets")
    def presets(path: str | None = None) -> dict[str, Any]:
        from lora_bakery.extension.compare import load_presets

        try:
            return {"presets": load_presets(path)}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/presets")
    def save(body: PresetsBody) -> dict[str, Any]:
        from lora_bakery.extension.compare import parse_presets, save_presets

        try:
            parsed = parse_presets(body.text)
            save_presets(body.path, parsed)
            return {"saved": list(parsed), "path": body.path}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/norms")
    def norms(body: NormsBody) -> dict[str, Any]:
        from lora_bakery.extension.compare import block_norms, list_epochs, plot_block_norms

        try:
            if body.folder:
                found = list_epochs(body.folder)
                files, labels = [str(e.path) for e in found], [e.label for e in found]
            else:
                files, labels = list(body.files or []), None
            if not files:
                raise ValueError("no LoRA files given")
            result = block_norms(files, labels)
            return {**result.as_dict(), "png": str(plot_block_norms(result, body.png))}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/bake")
    def bake(body: BakeBody) -> dict[str, Any]:
        from lora_bakery.extension.compare import (
            bake_block_weights,
            default_output,
            load_presets,
            resolve_blocks,
        )

        label = body.blocks if isinstance(body.blocks, str) else "custom"
        if gates is not None and not body.output:
            gates.require_path(str(default_output(body.source, label)), "output (the default file beside the source)")
        try:
            weights = resolve_blocks(body.blocks, load_presets(body.presets_file))
            result = bake_block_weights(body.source, weights, body.output, label=label, rebase_from=body.rebase_from,
                                        rebase_to=body.rebase_to, drop_zero_blocks=body.drop_zero_blocks)
            return {"path": str(result.path), "rebase": result.rebase, "dropped_layers": result.dropped_layers,
                    "layers": result.layers}
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc

    @router.post("/grid")
    def grid(body: GridBody) -> dict[str, Any]:
        from lora_bakery.extension.compare import load_presets, plan_cells
        from lora_bakery.extension.compare.jobs import grid_job, spec_from_dict

        try:
            spec = spec_from_dict({**body.spec, "presets": load_presets(body.presets_file)})
            cells = len(plan_cells(spec))  # mistakes answer 400 before queueing
        except USER_ERRORS as exc:
            raise _user_error(exc) from exc
        job = jobs.submit("Compare grid", grid_job, host(), spec, body.out)
        return {"job_id": job.id, "cells": cells}

    @router.post("/effect")
    def effect(body: EffectBody) -> dict[str, Any]:
        from lora_bakery.extension.compare.jobs import effect_job
        from lora_bakery.extension.host.base import GenerationRequest

        req = GenerationRequest(prompt=body.prompt, negative_prompt=body.negative_prompt, seed=body.seed,
                                steps=body.steps, width=body.width, height=body.height, cfg_scale=body.cfg_scale,
                                sampler=body.sampler)
        job = jobs.submit("Block analyzer", effect_job, host(), body.lora, req, body.out, blocks=body.blocks,
                          low=body.low, high=body.high, threshold=body.threshold)
        return {"job_id": job.id}

    return router
