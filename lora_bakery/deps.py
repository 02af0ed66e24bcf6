"""What LoRA Bakery needs, which versions are known to work, and which features are usable.

This is the one place with the known-good version table. It is pure standard library and
Python 3.10, because ``install.py`` imports it before anything is installed, and the UI and
``bakery doctor`` import it to grey out what cannot work.

Why a table and not just pip: inside a webui every installed package must stay at its version
(torch, gradio, transformers... belong to the host), and pip's metadata is not enough to pick
versions that *import* there. In A1111 1.10.1 pip happily picks diffusers 0.37.1 and peft 0.21.2
and neither imports (``reference/a1111-env.md``); diffusers 0.31.0 and peft 0.13.2 do. So
:mod:`lora_bakery.deps_install` installs what is missing with everything else held, imports it in a
fresh subprocess, and steps down through ``candidates`` until one works. What still fails turns
its feature off, with the reason, and the webui starts anyway.

The results live in a small JSON status file per Python environment (see :func:`status_path`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

PREFIX = "[LoRA Bakery]"
UNVERIFIED = " (not import-checked yet)"

FEATURES: dict[str, str] = {
    "core": "models, datasets and the Bakery tabs",
    "training": "LoRA / LoCon / DoRA training",
    "tagging": "WD14 auto-captions",
    "prodigy": "the Prodigy optimizer",
    "masks": "background masks (optional: bakery doctor --install masks)",
}
# A feature is usable only when the features it builds on are.
FEATURE_NEEDS: dict[str, tuple[str, ...]] = {"training": ("core",), "prodigy": ("core",), "masks": ("core",)}
# Never installed, upgraded or downgraded by us: they belong to the host (or to the user's CUDA).
HOST_OWNED = frozenset({"torch", "torchvision", "torchaudio", "xformers", "gradio", "gradio-client"})


@dataclass(frozen=True)
class Requirement:
    """One package LoRA Bakery needs, how to check it works, and what to try when it is missing.

    Attributes:
        dist (`str`): pip distribution name.
        feature (`str`): the key of `FEATURES` it enables.
        check (`str`): Python code run in a fresh interpreter; it works when it raises nothing.
        candidates (`tuple`, defaults to ``(None,)``): tried in order, newest first. ``None`` lets
            pip choose within the constraints; ``"0.31.0"`` means ``dist==0.31.0``; a string
            starting with ``<>=!~`` is a specifier; anything else is a full requirement.
        installable (`bool`, defaults to `True`): `False` for host-owned packages (torch).
        lazy (`bool`, defaults to `False`): installed on first use (:func:`ensure_installed`), not
            at startup.
        needs (`tuple`): dists that must work before this one is worth installing.
        provided_by (`tuple`): other dists that satisfy it (``onnxruntime-gpu``).
        gpu_dist (`str`, *optional*): tried first instead of ``dist`` when torch is a CUDA build.
        python_below (`tuple`, *optional*): only needed on Python older than this.
    """

    dist: str
    feature: str
    check: str
    candidates: tuple[str | None, ...] = (None,)
    installable: bool = True
    lazy: bool = False
    needs: tuple[str, ...] = ()
    provided_by: tuple[str, ...] = ()
    gpu_dist: str | None = None
    python_below: tuple[int, int] | None = None

    def applies(self) -> bool:
        return self.python_below is None or sys.version_info[:2] < self.python_below

    def names(self) -> tuple[str, ...]:
        """Every dist name that satisfies this requirement, ``dist`` first."""
        extra = (self.gpu_dist,) if self.gpu_dist else ()
        return (self.dist, *self.provided_by, *extra)


_DIFFUSERS_CHECK = (
    "from diffusers import UNet2DConditionModel, AutoencoderKL, DDPMScheduler, DDIMScheduler, "
    "EulerAncestralDiscreteScheduler, StableDiffusionPipeline, StableDiffusionXLPipeline"
)
# use_dora needs peft >= 0.9; 0.15+ needs accelerate >= 1.0, 0.14 needs transformers >= 4.36.
_PEFT_CHECK = (
    "from peft import LoraConfig, inject_adapter_in_model, get_peft_model_state_dict\n"
    "LoraConfig(r=4, lora_alpha=4, target_modules=['to_q'], use_dora=True)"
)
_ORT = ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-silicon")

# Order matters: a requirement is installed after the ones it `needs`, and the first entries of a
# feature are the ones its status line names.
REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement("torch", "core", "import torch", installable=False),
    # Known good in A1111 1.10.1 (transformers 4.30.2, hub 0.36) and Forge: 0.31.0. 0.32-0.37 need
    # newer transformers classes, 0.27 needs hub < 0.26 (reference/a1111-env.md).
    Requirement("diffusers", "core", _DIFFUSERS_CHECK, candidates=(None, "0.31.0"),
                needs=("torch", "transformers", "safetensors", "huggingface-hub")),
    Requirement("transformers", "core", "from transformers import CLIPTextModel, CLIPTokenizer", needs=("torch",)),
    Requirement("safetensors", "core", "import safetensors.torch", needs=("torch",)),
    Requirement("accelerate", "core", "import accelerate", needs=("torch",)),
    Requirement("huggingface-hub", "core", "import huggingface_hub"),
    Requirement("numpy", "core", "import numpy"),
    Requirement("pillow", "core", "from PIL import Image"),
    Requirement("tqdm", "core", "import tqdm"),
    Requirement("tomli", "core", "import tomli", python_below=(3, 11)),
    Requirement("peft", "training", _PEFT_CHECK, candidates=(None, "0.13.2", "0.11.1", "0.10.0"),
                needs=("torch", "transformers", "accelerate", "safetensors")),
    Requirement("onnxruntime", "tagging", "import onnxruntime as ort\nort.get_available_providers()",
                provided_by=_ORT, gpu_dist="onnxruntime-gpu"),
    Requirement("prodigyopt", "prodigy", "from prodigyopt import Prodigy", needs=("torch",)),
    Requirement("transparent-background", "masks", "from transparent_background import Remover",
                lazy=True, needs=("torch",)),
)


def canon(name: str) -> str:
    """PEP 503 normalised distribution name (``Pillow`` → ``pillow``, ``huggingface_hub`` → ``huggingface-hub``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """Every distribution importable in this interpreter, as ``{canonical name: version}``.

    Reads metadata only (no pip, no imports), so it is fast enough for every webui launch. When a
    name appears twice on ``sys.path`` the first one wins, as it does for imports.
    """
    # pip may have just changed site-packages: metadata's own cache is keyed by folder mtime,
    # the import system's is cleared here.
    importlib.invalidate_caches()
    out: dict[str, str] = {}
    for dist in metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if name and version and canon(name) not in out:
            out[canon(name)] = version
    return out


def applicable(requirements: Iterable[Requirement] = REQUIREMENTS, *, lazy: bool | None = None) -> list[Requirement]:
    """The requirements that apply to this Python (``lazy=None``: all, else only that kind)."""
    return [r for r in requirements if r.applies() and (lazy is None or r.lazy == lazy)]


def found(req: Requirement, dists: Mapping[str, str]) -> tuple[str, str] | None:
    """``(dist, version)`` of the installed dist satisfying ``req``, or `None`."""
    for name in req.names():
        if canon(name) in dists:
            return name, dists[canon(name)]
    return None


def missing(requirements: Iterable[Requirement] = REQUIREMENTS, *, lazy: bool | None = False) -> list[Requirement]:
    """Requirements with no satisfying distribution installed. Metadata only: no pip call.

    Args:
        requirements (`Iterable[Requirement]`, defaults to `REQUIREMENTS`): what to look at.
        lazy (`bool`, *optional*, defaults to `False`): `False` = startup requirements only,
            `True` = on-first-use ones only, `None` = both.

    Returns:
        `list[Requirement]`: in table order, host-owned ones (torch) included.
    """
    dists = installed()
    return [r for r in applicable(requirements, lazy=lazy) if found(r, dists) is None]


def torch_cuda() -> bool:
    """Whether the installed torch is a CUDA build, read from ``torch/version.py`` without importing torch."""
    try:
        files = metadata.distribution("torch").files or []
    except metadata.PackageNotFoundError:
        return False
    for f in files:
        if str(f).replace("\\", "/") == "torch/version.py":
            try:
                text = Path(str(f.locate())).read_text(encoding="utf-8")
            except OSError:
                return False
            m = re.search(r"^cuda\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", text, re.M)
            return m is not None
    return False


def pip_specs(req: Requirement, *, cuda: bool | None = None) -> list[str]:
    """The pip requirement strings to try for ``req``, in order (newest known-good first).

    ``None`` candidates become the bare name (pip picks within the constraints). With a CUDA
    torch and a ``gpu_dist``, the GPU build is tried before the CPU one, never both installed.
    """
    dists = [req.dist]
    if req.gpu_dist and (torch_cuda() if cuda is None else cuda) and sys.platform in {"linux", "win32"}:
        dists = [req.gpu_dist, req.dist]
    specs: list[str] = []
    for dist in dists:
        for cand in req.candidates:
            if cand is None:
                spec = dist
            elif cand[:1].isdigit():
                spec = f"{dist}=={cand}"
            elif cand[:1] in "<>=!~":
                spec = dist + cand
            else:
                spec = cand
            if spec not in specs:
                specs.append(spec)
    return specs


# PEP 440 (packaging's VERSION_PATTERN): versions pip accepts after "==". Others get "===".
_PEP440 = re.compile(
    r"^v?(?:(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*(?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?"
    r"(?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?(?:[-_.]?dev[-_.]?[0-9]*)?)(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$",
    re.I,
)


def constraints_text(dists: Mapping[str, str]) -> str:
    """A pip constraints file holding every given distribution at exactly its version.

    Editable and local installs are pinned too: pip accepts an installed distribution that
    satisfies its pin without looking for it on an index (tested).
    """
    lines = []
    for name in sorted(dists):
        version = dists[name]
        op = "==" if _PEP440.match(version) else "==="
        lines.append(f"{name}{op}{version}")
    return "\n".join(lines) + "\n"


def context(dists: Mapping[str, str]) -> str:
    """Fingerprint of what decides whether our packages import: the versions of every dist in the
    startup table and of the host packages, the Python version and the table itself (an
    extension update that changes a candidate or a check retries what failed).

    Verification results and "nothing compatible" verdicts stay valid while it is unchanged, so a
    launch with nothing missing makes no subprocess at all, and a failed feature is retried only
    after the host changed (or with ``install.py --retry``).
    """
    names = {canon(n) for r in applicable(lazy=False) for n in r.names()} | HOST_OWNED | {"tokenizers"}
    table = [[r.dist, list(r.candidates), r.check] for r in REQUIREMENTS]
    payload = [table, list(sys.version_info[:3]), sys.platform] + [[n, dists.get(n)] for n in sorted(names)]
    return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Status file


@dataclass
class Record:
    """What we know about one requirement in this environment.

    Attributes:
        dist (`str`): the dist that satisfies it (or the one we tried).
        ok (`bool`): whether its check passed.
        version (`str`, *optional*): the installed version the verdict is about (`None`: not installed).
        detail (`str`): one human line: what was installed, or why it is unavailable.
        tried (`list`): ``[pip spec, outcome]`` for every candidate tried in the last install.
    """

    dist: str
    ok: bool
    version: str | None = None
    detail: str = ""
    tried: list[list[str]] = field(default_factory=list)


@dataclass
class Status:
    """The status file: one `Record` per requirement, valid while `context` matches."""

    context: str = ""
    records: dict[str, Record] = field(default_factory=dict)
    updated: float = 0.0
    python: str = ""


def _env_key() -> str:
    return hashlib.sha256(os.path.realpath(sys.prefix).encode()).hexdigest()[:12]


def _cache_dir() -> Path:
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = str(Path.home() / "Library" / "Caches")
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lora-bakery"


def status_path() -> Path:
    """Where this Python environment's status file lives.

    ``$BAKERY_DEPS_STATUS`` when set; else ``.bakery-cache/deps/`` in the extension folder (the
    checkout holding ``install.py``; gitignored), or the user cache folder when installed as a
    package or when that folder is read-only. The file name carries a hash of ``sys.prefix``:
    one checkout can serve several environments (A1111 and standalone) without mixing them up.
    """
    if os.environ.get("BAKERY_DEPS_STATUS"):
        return Path(os.environ["BAKERY_DEPS_STATUS"])
    name = f"deps-{_env_key()}.json"
    root = Path(__file__).resolve().parent.parent
    local = root / ".bakery-cache" / "deps" / name
    if local.exists():
        return local
    if (root / "install.py").is_file():
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            if os.access(local.parent, os.W_OK):
                return local
        except OSError:
            pass
    return _cache_dir() / "deps" / name


def load_status(path: Path | None = None) -> Status:
    """Read the status file; a missing or unreadable one is an empty `Status` (nothing known)."""
    path = path or status_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        records = {k: Record(**v) for k, v in raw.get("records", {}).items()}
        return Status(raw.get("context", ""), records, raw.get("updated", 0.0), raw.get("python", ""))
    except (OSError, ValueError, TypeError):
        return Status()


def save_status(status: Status, path: Path | None = None) -> Path:
    """Write the status file atomically (temp file + ``os.replace``). Returns its path."""
    path = path or status_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    status.updated, status.python = time.time(), sys.executable
    data = {"schema": 1, **asdict(status)}
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def valid_record(status: Status, req: Requirement, dists: Mapping[str, str], ctx: str) -> Record | None:
    """The stored record for ``req`` if it still describes this environment, else `None`."""
    rec = status.records.get(req.dist)
    if rec is None or status.context != ctx:
        return None
    hit = found(req, dists)
    now = hit[1] if hit else None
    if rec.version != now or (hit and canon(rec.dist) != canon(hit[0])):
        return None
    return rec


# ---------------------------------------------------------------------------------------------
# What the UI and `bakery doctor` ask


def requirement_state(req: Requirement, dists: Mapping[str, str], status: Status, ctx: str) -> tuple[bool, str]:
    """``(usable, one-line detail)`` for one requirement, from metadata and the status file."""
    hit = found(req, dists)
    rec = valid_record(status, req, dists, ctx)
    if hit is not None:
        label = f"{hit[0]} {hit[1]}"
        if rec is None:
            return True, label + UNVERIFIED
        return rec.ok, label if rec.ok else f"{label} does not import here: {rec.detail}"
    if rec is not None and not rec.ok:
        return False, rec.detail
    if not req.installable:
        return False, f"{req.dist} is not installed (LoRA Bakery never installs it: install the build for your GPU)"
    if req.lazy:
        return True, f"{req.dist} not installed yet (install it with: bakery doctor --install {req.feature})"
    return False, f"{req.dist} is not installed (restart the webui to install it)"


def feature_status(*, path: Path | None = None, verify: bool = False) -> dict[str, tuple[bool, str]]:
    """Which features work here, for ``bakery doctor`` and to grey out parts of the UI.

    Cheap: package metadata plus the status file ``install.py`` wrote; nothing is imported. A
    package that is installed but was never verified counts as usable ("not import-checked yet")
    unless ``verify`` is set. An optional feature that is not installed yet counts as usable
    ("install it with: bakery doctor --install …") unless installing it already failed.

    Args:
        path (`Path`, *optional*): status file (defaults to :func:`status_path`).
        verify (`bool`, *optional*, defaults to `False`): import-check unverified packages now, in
            subprocesses (seconds), and store the results.

    Returns:
        `dict[str, tuple[bool, str]]`: ``{feature: (usable, detail)}`` for every key of `FEATURES`.
    """
    if verify:
        from lora_bakery import deps_install

        deps_install.verify_installed(status_file=path)
    dists, status = installed(), load_status(path)
    ctx = context(dists)
    own: dict[str, tuple[bool, str]] = {}
    for feature in FEATURES:
        reqs = [r for r in applicable() if r.feature == feature]
        states = [(r, *requirement_state(r, dists, status, ctx)) for r in reqs]
        bad = [d for _, ok, d in states if not ok]
        if bad:
            more = f" (+{len(bad) - 2} more)" if len(bad) > 2 else ""
            own[feature] = (False, "; ".join(bad[:2]) + more)
        else:
            names = [d.removesuffix(UNVERIFIED) for _, _, d in states]
            more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
            unverified = UNVERIFIED if any(d.endswith(UNVERIFIED) for _, _, d in states) else ""
            own[feature] = (True, ", ".join(names[:3]) + more + unverified)
    out: dict[str, tuple[bool, str]] = {}
    for feature, (ok, detail) in own.items():
        blocked = [f for f in FEATURE_NEEDS.get(feature, ()) if not own[f][0]]
        out[feature] = (False, f"needs {', '.join(blocked)}") if ok and blocked else (ok, detail)
    return out


def ensure_installed(feature: str, *, log=None, retry: bool = False) -> tuple[bool, str]:
    """Make ``feature`` usable now, installing what it lacks (the on-first-use path).

    Same rules as ``install.py``: every installed package held at its version, each new package
    import-checked, failures rolled back. Meant to run inside a job (it may take minutes).

    Args:
        feature (`str`): a key of `FEATURES`, e.g. ``"masks"``.
        log (`Callable[[str], None]`, *optional*): receives progress lines (defaults to print).
        retry (`bool`, *optional*, defaults to `False`): try again even if it failed before here.

    Returns:
        `tuple[bool, str]`: ``(usable, detail)`` as in :func:`feature_status`.
    """
    from lora_bakery import deps_install

    return deps_install.ensure_feature(feature, log=log, retry=retry)


def summary_lines(states: Mapping[str, tuple[bool, str]]) -> list[str]:
    """Short ``[LoRA Bakery]`` lines for unavailable features (what install.py prints last)."""
    return [f"{PREFIX} {name} unavailable: {detail}" for name, (ok, detail) in states.items() if not ok]


def requirements_for(features: Sequence[str]) -> list[Requirement]:
    """The applicable requirements of ``features`` and of the features they build on."""
    wanted: list[str] = []
    stack = list(features)
    while stack:
        f = stack.pop(0)
        if f not in FEATURES:
            raise ValueError(f"unknown feature {f!r}; known: {', '.join(FEATURES)}")
        if f not in wanted:
            wanted.append(f)
            stack.extend(FEATURE_NEEDS.get(f, ()))
    return [r for r in applicable() if r.feature in wanted]
