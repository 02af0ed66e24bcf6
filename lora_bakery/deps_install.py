"""Install what LoRA Bakery lacks without changing anything the host already has.

The rules (foundation issue, item 9), all implemented here and tested against a real A1111 1.10.1
environment (``tests/test_install.py``):

1. Only what is missing is installed. With nothing missing there is no pip call at all, and with
   nothing new to verify no subprocess either: ``install.py`` then takes well under a second.
2. Every installed distribution is pinned at its installed version in a constraints file (``-c``),
   so pip can add packages but never upgrade or downgrade torch, gradio, transformers, Pillow...
3. pip's metadata is not trusted: each new package is import-checked in a fresh interpreter. If
   the check fails, exactly the distributions that attempt added are uninstalled (never one that
   was there before) and the next known-good candidate of `lora_bakery.deps.REQUIREMENTS` is tried.
4. When no candidate works, the feature is recorded as unavailable with the reason, and the
   process still exits 0: the webui starts. It is retried only when the host's packages change
   (see `lora_bakery.deps.context`) or with ``install.py --retry``.

We do not call A1111's ``launch.run_pip``: it builds one shell string (paths with spaces break)
and raises on failure. We pass the same flags it adds (``--prefer-binary``, ``$INDEX_URL``) and
honour ``--skip-install`` from the command line or ``$COMMANDLINE_ARGS``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path

from lora_bakery.deps import (
    FEATURES,
    PREFIX,
    REQUIREMENTS,
    Record,
    Requirement,
    Status,
    applicable,
    canon,
    constraints_text,
    context,
    feature_status,
    found,
    installed,
    load_status,
    pip_specs,
    requirements_for,
    save_status,
    status_path,
    summary_lines,
    valid_record,
)

Log = Callable[[str], None]
CHECK_TIMEOUT_S = 900
PIP_TIMEOUT_S = 3600
_MARK = "@@BAKERY-CHECK@@"
_THREAD_LOCK = threading.Lock()


def _print(msg: str) -> None:
    print(f"{PREFIX} {msg}", flush=True)


def skip_install_requested() -> bool:
    """A1111's ``--skip-install``, from our own argv (webui process) or ``$COMMANDLINE_ARGS``."""
    try:
        extra = shlex.split(os.environ.get("COMMANDLINE_ARGS", ""))
    except ValueError:
        extra = []
    return "--skip-install" in sys.argv or "--skip-install" in extra


def last_error(text: str, limit: int = 300) -> str:
    """The most telling line of a traceback or pip log (``ImportError: ...``, ``ERROR: ...``)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i in range(len(lines) - 1, -1, -1):
        if re.match(r"^([\w.]*(Error|Exception|Exit)\b|ERROR:)", lines[i]):
            line = lines[i]
            if line.endswith(":") and i + 1 < len(lines):  # diffusers: "Failed to import X ...:\n<cause>"
                line = f"{line} {lines[i + 1]}"
            return line[:limit]
    return (lines[-1] if lines else "no output")[:limit]


def _pip(args: Sequence[str], log_file: Path | None) -> tuple[int, str]:
    """Run ``python -m pip`` for this interpreter; returns (exit code, combined output)."""
    cmd = [sys.executable, "-m", "pip", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=PIP_TIMEOUT_S, errors="replace")
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        rc, out = 1, f"ERROR: {exc}"
    if log_file is not None:
        with contextlib.suppress(OSError):
            log_file.parent.mkdir(parents=True, exist_ok=True)
            with log_file.open("a", encoding="utf-8") as f:
                f.write(f"\n$ {' '.join(cmd)}\n{out}\n[exit {rc}]\n")
    return rc, out


def check(code: str) -> tuple[bool, str]:
    """Run ``code`` in a fresh interpreter: ``(True, "")`` or ``(False, the error line)``."""
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, errors="replace",
                              stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir(), timeout=CHECK_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return (True, "") if proc.returncode == 0 else (False, last_error(proc.stderr + proc.stdout))


_MANY = f"""
import json, sys
out = {{}}
for name, code in json.loads(sys.argv[1]).items():
    try:
        exec(compile(code, name, "exec"), {{}})
        out[name] = [True, ""]
    except BaseException as exc:
        out[name] = [False, (type(exc).__name__ + ": " + str(exc)).splitlines()[0][:300]]
print({_MARK!r} + json.dumps(out))
"""


def check_many(checks: dict[str, str]) -> dict[str, tuple[bool, str]]:
    """Run several checks in ONE fresh interpreter (torch is imported once, not per package)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _MANY, json.dumps(checks)], capture_output=True, text=True,
                              errors="replace", stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir(),
                              timeout=CHECK_TIMEOUT_S)
        line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(_MARK)), None)
        if line is not None:
            return {k: (bool(v[0]), str(v[1])) for k, v in json.loads(line[len(_MARK):]).items()}
        why = last_error(proc.stderr + proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    return {k: (False, f"check crashed: {why}") for k in checks}


def _dist_mtimes() -> dict[str, float]:
    """When each distribution's metadata folder was last written (install time), by canonical name."""
    out: dict[str, float] = {}
    for dist in metadata.distributions():
        folder, name = getattr(dist, "_path", None), dist.metadata["Name"]
        if folder is not None and name and canon(name) not in out:
            with contextlib.suppress(OSError):
                out[canon(name)] = Path(folder).stat().st_mtime
    return out


def recover_interrupted(work: Path, log: Log) -> list[str]:
    """Undo an install attempt that was killed half-way (webui closed during the first launch).

    Each attempt writes a journal (what was installed before it, and when it started) and removes
    it when it is done. A journal left over means the attempt's new packages may be a version that
    does not import; they are removed so the next attempt starts clean. Only dists that were both
    absent from the journal and installed while that attempt ran are touched, never the host's.

    Returns:
        `list[str]`: the distributions removed.
    """
    journal = work.with_suffix(".journal")
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
        before, started = set(data["before"]), float(data["started"])
    except OSError:
        return []
    except (ValueError, KeyError, TypeError):
        journal.unlink(missing_ok=True)
        return []
    window = started + PIP_TIMEOUT_S + CHECK_TIMEOUT_S
    stamps = _dist_mtimes()
    ours = sorted(n for n in installed() if n not in before and started - 2 <= stamps.get(n, 0.0) <= window)
    if ours:
        log(f"an earlier install was interrupted; removing what it added: {', '.join(ours)}")
        rc, out = _pip(["uninstall", "-y", *ours], work.with_suffix(".log"))
        if rc != 0:
            log(f"WARNING: could not remove {', '.join(ours)}: {last_error(out)}")
            return []
    journal.unlink(missing_ok=True)
    return ours


def _attempt(req: Requirement, spec: str, pip_args: Sequence[str], work: Path | None, log: Log
             ) -> tuple[bool, str, tuple[str, str] | None]:
    """pip-install one candidate with everything installed held, import-check it, roll back on failure.

    Returns:
        `tuple`: (worked, outcome line, (dist, version) that pip installed or `None`).
    """
    log_file = work.with_suffix(".log") if work else None
    journal = work.with_suffix(".journal") if work else None
    before = installed()
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
        journal.write_text(json.dumps({"before": sorted(before), "started": time.time(), "spec": spec}))
    with tempfile.TemporaryDirectory(prefix="bakery-pip-") as td:
        cfile = Path(td) / "constraints.txt"
        cfile.write_text(constraints_text(before), encoding="utf-8")
        index = ["--index-url", os.environ["INDEX_URL"]] if os.environ.get("INDEX_URL") else []
        rc, out = _pip(["install", "--no-input", "--disable-pip-version-check", "--prefer-binary",
                        "--no-warn-script-location", "-c", str(cfile), *index, *pip_args, spec], log_file)
    after = installed()
    new = sorted(set(after) - set(before))
    moved = {n: (before[n], after.get(n)) for n in before if after.get(n) != before[n]}
    if moved:  # cannot happen with every dist pinned; say so loudly if pip ever does it
        log(f"WARNING: pip changed installed packages despite the constraints: {moved}")
    hit = found(req, after)
    if rc != 0:
        ok, outcome = False, f"pip could not install it ({last_error(out)})"
    elif hit is None:
        ok, outcome = False, "pip installed nothing for it"
    else:
        ok, err = check(req.check)
        outcome = f"{hit[0]} {hit[1]} works" if ok else f"{hit[0]} {hit[1]} does not import here ({err})"
    if not ok:
        log(f"{spec}: {outcome}")
    if not ok and new:
        log(f"removing what that attempt added: {', '.join(f'{n} {after[n]}' for n in new)}")
        rc_u, out_u = _pip(["uninstall", "-y", *new], log_file)
        if rc_u != 0:
            log(f"WARNING: could not remove {', '.join(new)}: {last_error(out_u)}")
            return ok, outcome, hit  # the journal stays: the next run retries the removal
    if journal is not None:
        journal.unlink(missing_ok=True)
    return ok, outcome, hit


def _spec_key(spec: str) -> str | None:
    m = re.fullmatch(r"([A-Za-z0-9._-]+)==([^,;\s]+)", spec.strip())
    return f"{canon(m.group(1))}=={m.group(2)}" if m else None


def install_one(req: Requirement, *, pip_args: Sequence[str] = (), log: Log = _print,
                work: Path | None = None) -> Record:
    """Step down through the candidates of ``req`` until one installs and imports.

    Args:
        req (`Requirement`): what to install (must be missing now).
        pip_args (`Sequence[str]`, *optional*): extra pip arguments (``--no-index``, ``--find-links``...).
        log (`Callable[[str], None]`, *optional*): progress lines.
        work (`Path`, *optional*): the status file; pip's full output is appended beside it
            (``.log``), and each attempt keeps a ``.journal`` there while it runs.

    Returns:
        `Record`: ``ok`` with the installed version, or not ok with every attempt in ``detail``.
    """
    log(f"installing {req.dist} (needed for {req.feature}: {FEATURES.get(req.feature, req.feature)})")
    tried: list[list[str]] = []
    seen: set[str] = set()
    specs = pip_specs(req)
    for i, spec in enumerate(specs):
        if _spec_key(spec) in seen:
            continue  # pip's own pick was this exact version and it already failed
        t0 = time.monotonic()
        ok, outcome, hit = _attempt(req, spec, pip_args, work, log)
        tried.append([spec, outcome])
        if hit is not None:
            seen.add(f"{canon(hit[0])}=={hit[1]}")
        if ok and hit is not None:
            log(f"installed {hit[0]} {hit[1]} ({time.monotonic() - t0:.0f} s)")
            stepped = f" (newer: {'; '.join(o for _, o in tried[:-1])})" if len(tried) > 1 else ""
            return Record(hit[0], True, hit[1], f"installed {hit[0]} {hit[1]}{stepped}", tried)
        if i + 1 < len(specs):
            log("trying an older known-good version")
    if len(tried) == 1:
        detail = f"{req.dist}: {tried[0][1]}"
    else:
        detail = f"no version of {req.dist} works here: " + "; ".join(f"{s}: {o}" for s, o in tried)
    return Record(req.dist, False, None, detail, tried)


def _ordered(reqs: Sequence[Requirement]) -> list[Requirement]:
    """Table order, except that a requirement comes after the ones it `needs`."""
    by = {r.dist: r for r in reqs}
    done: list[Requirement] = []
    seen: set[str] = set()

    def visit(r: Requirement) -> None:
        if r.dist in seen:
            return
        seen.add(r.dist)
        for n in r.needs:
            if n in by:
                visit(by[n])
        done.append(r)

    for r in reqs:
        visit(r)
    return done


def run_install(requirements: Sequence[Requirement] = REQUIREMENTS, *, lazy: bool | None = False,
                pip_args: Sequence[str] = (), retry: bool = False, status_file: Path | None = None,
                log: Log = _print) -> tuple[Status, bool]:
    """Verify what is installed, install what is missing, record the verdicts. Never raises for a
    package problem: an unusable package becomes a not-ok `Record`.

    Args:
        requirements (`Sequence[Requirement]`, defaults to the table): what to look after.
        lazy (`bool`, *optional*, defaults to `False`): `False` = startup requirements only (what
            install.py does), `None` = also on-first-use ones.
        pip_args (`Sequence[str]`, *optional*): extra pip arguments.
        retry (`bool`, *optional*, defaults to `False`): retry requirements recorded as failed.
        status_file (`Path`, *optional*): defaults to :func:`lora_bakery.deps.status_path`.
        log (`Callable[[str], None]`, *optional*): progress lines.

    Returns:
        `tuple[Status, bool]`: the status now, and whether anything was checked or installed (when
        not, nothing was written either).
    """
    path = status_file or status_path()
    recovered = recover_interrupted(path, log)
    status = load_status(path)
    dists = installed()
    ctx0 = context(dists)
    reqs = _ordered(applicable(requirements, lazy=lazy))
    fresh: dict[str, Record] = {}
    todo: dict[str, tuple[Requirement, tuple[str, str]]] = {}
    for r in reqs:
        hit = found(r, dists)
        rec = valid_record(status, r, dists, ctx0)
        if rec is not None and (rec.ok or not retry):
            fresh[r.dist] = rec  # still true here: no need to check or retry
        elif hit is not None:
            todo[r.dist] = (r, hit)
    if todo:
        results = check_many({d: r.check for d, (r, _) in todo.items()})
        for d, (_, (name, version)) in todo.items():
            ok, err = results[d]
            fresh[d] = Record(name, ok, version, "" if ok else err)
    acted = bool(todo or recovered)
    pip_ok = importlib.util.find_spec("pip") is not None
    for r in reqs:
        if r.dist in fresh:
            continue
        now = installed()
        blockers = [n for n in r.needs if (not fresh[n].ok if n in fresh else canon(n) not in now)]
        if not r.installable:
            fresh[r.dist] = Record(r.dist, False, None, f"{r.dist} is not installed (LoRA Bakery never installs it: "
                                   "install the build for your GPU)")
        elif blockers:
            fresh[r.dist] = Record(r.dist, False, None, f"{r.dist} not installed: needs {', '.join(blockers)}")
        elif skip_install_requested():
            log(f"{r.dist} is missing; not installed because of --skip-install")
            continue
        elif not pip_ok:
            fresh[r.dist] = Record(r.dist, False, None, f"{r.dist} not installed: this Python has no pip")
        else:
            fresh[r.dist] = install_one(r, pip_args=pip_args, log=log, work=path)
            importlib.invalidate_caches()
        acted = True
    if not acted and status.context == ctx0:
        return status, False  # the fast path: nothing missing, nothing new, nothing written
    keep = {d: rec for d, rec in status.records.items() if d not in fresh and status.context == ctx0}
    new_status = Status(context(installed()), {**keep, **fresh})
    save_status(new_status, path)
    return new_status, True


def verify_installed(status_file: Path | None = None) -> Status:
    """Import-check every installed requirement not verified here yet; install nothing."""
    path = status_file or status_path()
    status, dists = load_status(path), installed()
    ctx = context(dists)
    todo = {r.dist: (r, hit) for r in applicable() if (hit := found(r, dists)) is not None
            and valid_record(status, r, dists, ctx) is None}
    if not todo:
        return status
    results = check_many({d: r.check for d, (r, _) in todo.items()})
    keep = status.records if status.context == ctx else {}
    fresh = {d: Record(name, results[d][0], version, results[d][1]) for d, (_, (name, version)) in todo.items()}
    new_status = Status(ctx, {**keep, **fresh})
    save_status(new_status, path)
    return new_status


def _stale(lock: Path) -> bool:
    """A lock left by an installer that died: its process is gone (POSIX), or it is hours old."""
    try:
        if time.time() - lock.stat().st_mtime > 2 * 3600:
            return True
        pid = int(lock.read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    if os.name != "posix" or pid <= 0:
        return False  # os.kill(pid, 0) would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


@contextlib.contextmanager
def install_lock(path: Path, wait_s: float = 600.0) -> Iterator[None]:
    """One installer at a time per environment (threads in this process and other processes).

    Raises:
        `TimeoutError`: another live installer kept the lock for ``wait_s`` seconds.
    """
    lock = path.with_suffix(".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                if _stale(lock):
                    lock.unlink(missing_ok=True)
                    continue
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another LoRA Bakery install holds {lock}") from None
                time.sleep(0.5)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(str(os.getpid()))
            break
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


def ensure_feature(feature: str, *, log: Log | None = None, retry: bool = False,
                   pip_args: Sequence[str] = (), status_file: Path | None = None) -> tuple[bool, str]:
    """Install what ``feature`` lacks (on-first-use path); see :func:`lora_bakery.deps.ensure_installed`."""
    path = status_file or status_path()
    reqs = requirements_for([feature])
    with install_lock(path):
        run_install(reqs, lazy=None, pip_args=pip_args, retry=retry, status_file=path, log=log or _print)
    importlib.invalidate_caches()
    return feature_status(path=path)[feature]


def main(argv: Sequence[str] | None = None) -> int:
    """What ``install.py`` runs. Always returns 0: a dependency problem must not stop the webui."""
    parser = argparse.ArgumentParser(prog="install.py", description="Install LoRA Bakery's missing dependencies "
                                     "without changing any installed package.")
    parser.add_argument("--retry", action="store_true", help="retry features that failed before")
    parser.add_argument("--feature", action="append", default=[], choices=sorted(FEATURES),
                        help="also install this on-first-use feature now (e.g. masks)")
    args, _unknown = parser.parse_known_args(argv)
    t0 = time.monotonic()
    try:
        path = status_path()
        with install_lock(path):
            _, acted = run_install(retry=args.retry, status_file=path)
        for feature in args.feature:
            ensure_feature(feature, retry=args.retry, status_file=path)
        if acted or args.feature:
            states = feature_status(path=path)
            lines = summary_lines(states)
            for line in lines:
                print(line, flush=True)
            ready = [f for f, (ok, _) in states.items() if ok]
            _print(f"ready: {', '.join(ready) or 'nothing'} ({time.monotonic() - t0:.1f} s; status in {path})")
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # never break the webui's start
        _print(f"dependency check failed ({type(exc).__name__}: {exc}); the webui starts anyway, "
               "see `bakery doctor`")
    return 0
