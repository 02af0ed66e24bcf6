"""The one table of ``/bakery/v1`` routes: read-only or writing, and which request fields are paths or names.

``api_gates`` looks every request up here: a writing route is refused when the server is reachable
beyond this machine without credentials; every path field is resolved and checked against the
allowed folders; every name field must stay a single path component. A route missing from
:data:`ROUTES` is refused outright, and ``tests/extension/test_api_security.py`` fails when a
registered route has no row, so a new route cannot slip through unclassified.

Field extractors read the request as sent (JSON body merged over the query string) and yield
:class:`Ref` rows; a value of the wrong type is skipped here and refused by the route's own
validation (422).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READ = "read-only"
WRITE = "writing"

#: Dataset operations that load a model (and may download one) even as a preview: run as jobs.
MODEL_OPS = ("tag", "masks")


@dataclass(frozen=True)
class Ref:
    """One value of a request that names a file or folder.

    Attributes:
        field (`str`): where it was, as the caller wrote it (``params.paths[2]``).
        value (`str`): the value.
        base (`str`, *optional*): the folder a relative value lives in (else the working folder).
        kind (`str`): ``"path"`` (checked against the allowed folders) or ``"name"`` (one component).
    """

    field: str
    value: str
    base: str | None = None
    kind: str = "path"


Extractor = Callable[[Mapping[str, Any]], Iterator[Ref]]


@dataclass(frozen=True)
class Access:
    """How a route is gated.

    Attributes:
        mode (`str`): :data:`READ` or :data:`WRITE` (changes files, or starts a job).
        refs (`Extractor`): the request's path and name fields.
        writes_if (`Callable`, *optional*): for a read-only route, the requests that still write or
            start a job (a dataset preview run as a job).
    """

    mode: str
    refs: Extractor = lambda data: iter(())
    writes_if: Callable[[Mapping[str, Any]], bool] | None = None

    def writes(self, data: Mapping[str, Any]) -> bool:
        return self.mode == WRITE or bool(self.writes_if and self.writes_if(data))


def _text(value: Any) -> str | None:
    """The string a route will see (pydantic turns numbers into strings); ``None`` for other types."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _items(field: str, value: Any) -> Iterator[tuple[str, str]]:
    """(field, text) for a value that may be one string or several: a list, or an object, whose keys
    the operations would iterate (``list(value)``, ``str(item)``), so its keys are checked too."""
    if isinstance(value, (list, tuple, Mapping)):
        for i, item in enumerate(list(value)):
            if item is not None:
                yield f"{field}[{i}]", item if isinstance(item, str) else str(item)
    else:
        text = _text(value)
        if text is not None:
            yield field, text


def _present(data: Mapping[str, Any], key: str) -> bool:
    return key in data and data[key] not in (None, "")


def fields(*names: str) -> Extractor:
    """Top-level fields that are paths (a list value: every item)."""

    def refs(data: Mapping[str, Any]) -> Iterator[Ref]:
        for name in names:
            if _present(data, name):
                for field, text in _items(name, data[name]):
                    yield Ref(field, text)

    return refs


def _tagger_models(params: Mapping[str, Any]) -> Iterator[Ref]:
    """Tagger ``models``: a folder is a path; a known name or ``owner/repo`` id becomes a folder name."""
    for key in ("models", "model"):
        if not _present(params, key):
            continue
        for field, text in _items(f"params.{key}", params[key]):
            for spec in (s.strip() for s in text.replace("\n", ",").split(",") if s.strip()):
                path = Path(spec).expanduser()
                if path.is_dir() or path.is_absolute() or spec.startswith((".", "~")) or spec.count("/") > 1 \
                        or "\\" in spec:
                    yield Ref(field, spec)
                else:
                    yield Ref(field, spec.split("/", 1)[-1], kind="name")


def dataset_op(data: Mapping[str, Any]) -> Iterator[Ref]:
    """``root`` and the operation's path options: ``paths``/``mask_dir`` (inside root), ``ckpt``,
    ``models_dir``, tagger ``models``; ``caption_extension`` becomes part of file names."""
    yield from fields("root")(data)
    params = data.get("params")
    if not isinstance(params, Mapping):
        return
    root = _text(data.get("root"))
    if _present(params, "paths"):
        for field, text in _items("params.paths", params["paths"]):
            yield Ref(field, text, base=root)
    if _present(params, "mask_dir"):  # the masks planner strips "/" and joins the rest to root: check both readings
        for field, text in _items("params.mask_dir", params["mask_dir"]):
            yield Ref(field, text, base=root)
            yield Ref(field, text.strip("/") or ".", base=root)
    for key in ("ckpt", "models_dir"):
        if _present(params, key):
            for field, text in _items(f"params.{key}", params[key]):
                yield Ref(field, text)
    yield from _tagger_models(params)
    if _present(params, "caption_extension"):
        for field, text in _items("params.caption_extension", params["caption_extension"]):
            yield Ref(field, text, kind="name")


def dataset_undo(data: Mapping[str, Any]) -> Iterator[Ref]:
    """``root``; ``backup`` is a folder name inside the root's backups, or an absolute path."""
    yield from fields("root")(data)
    backup = _text(data.get("backup")) if _present(data, "backup") else None
    if backup is not None:
        yield Ref("backup", backup, kind="path" if Path(backup).is_absolute() else "name")


def reg_images(data: Mapping[str, Any]) -> Iterator[Ref]:
    """The reg folder and the images in it (relative to it)."""
    yield from fields("output")(data)
    output = _text(data.get("output"))
    if _present(data, "paths"):
        for field, text in _items("paths", data["paths"]):
            yield Ref(field, text, base=output)


def compare_grid(data: Mapping[str, Any]) -> Iterator[Ref]:
    """The output folder, the presets file, the grid's LoRA and every epoch-axis file."""
    yield from fields("out", "presets_file")(data)
    spec = data.get("spec")
    if not isinstance(spec, Mapping):
        return
    yield from (Ref(f"spec.{r.field}", r.value) for r in fields("lora")(spec))
    for axis in ("x", "y", "z"):
        value = spec.get(axis)
        if isinstance(value, Mapping) and value.get("kind") == "epoch" and _present(value, "values"):
            for field, text in _items(f"spec.{axis}.values", value["values"]):
                yield Ref(field, text)


def _job_preview(data: Mapping[str, Any]) -> bool:
    return bool(data.get("as_job")) or data.get("op") in MODEL_OPS


#: (method, path under ``/bakery/v1``) → how the route is gated. The route table in
#: docs/architecture.md is this table in prose.
ROUTES: dict[tuple[str, str], Access] = {
    ("GET", "/health"): Access(READ),
    ("GET", "/jobs"): Access(READ),
    ("GET", "/jobs/{job_id}"): Access(READ),
    ("GET", "/jobs/{job_id}/preview"): Access(READ),
    ("POST", "/jobs/{job_id}/interrupt"): Access(WRITE),
    ("GET", "/dataset/operations"): Access(READ),
    ("POST", "/dataset/scan"): Access(READ, fields("root")),
    ("POST", "/dataset/buckets"): Access(READ, dataset_op),
    ("GET", "/dataset/backups"): Access(READ, fields("root")),
    ("POST", "/dataset/preview"): Access(READ, dataset_op, writes_if=_job_preview),
    ("POST", "/dataset/apply"): Access(WRITE, dataset_op),
    ("POST", "/dataset/undo"): Access(WRITE, dataset_undo),
    ("POST", "/dataset/tag"): Access(WRITE, dataset_op),
    ("POST", "/reg/preview"): Access(READ, fields("source", "output")),
    ("POST", "/reg/suggest"): Access(READ, fields("source")),
    ("GET", "/reg/images"): Access(READ, fields("output")),
    ("POST", "/reg/generate"): Access(WRITE, fields("source", "output")),
    ("POST", "/reg/reroll"): Access(WRITE, reg_images),
    ("POST", "/reg/delete"): Access(WRITE, reg_images),
    ("GET", "/compare/epochs"): Access(READ, fields("folder")),
    ("GET", "/compare/presets"): Access(READ, fields("path")),
    ("POST", "/compare/presets"): Access(WRITE, fields("path")),
    ("POST", "/compare/norms"): Access(WRITE, fields("folder", "files", "png")),
    ("POST", "/compare/bake"): Access(WRITE, fields("source", "output", "presets_file")),
    ("POST", "/compare/grid"): Access(WRITE, compare_grid),
    ("POST", "/compare/effect"): Access(WRITE, fields("lora", "out")),
}
