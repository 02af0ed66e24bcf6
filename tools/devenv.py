#!/usr/bin/env python3
"""Set up the two test environments and run the demo or the test suite.

    python3 tools/devenv.py demo   # standalone env, then `bakery demo --out demo-out`
    python3 tools/devenv.py test   # both envs, ruff, then pytest in each

Environments (under ``.venvs/``, rebuilt only when their inputs change):

* ``standalone``: requirements/standalone.txt (newest diffusers/transformers/peft that import
  beside gradio 4.x, as Forge uses) + the test tools.
* ``a1111``: a faithful A1111 1.10.1 environment: its ``pip freeze`` (requirements/
  a1111-1.10.1-freeze.txt) installed without dependency resolution, torch 2.13.0 CPU in place of
  the CUDA build, then our own ``install.py`` run against it exactly as A1111 runs it. The freeze
  before ``install.py`` is kept beside the venv so tests can prove nothing installed was changed.

Only the standard library is used here: this runs before anything is installed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / ".venvs"
REQ = ROOT / "requirements"
TORCH = "torch==2.13.0"


def _run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def _py(venv: Path) -> Path:
    return venv / "bin" / "python"


def _stamp(*files: Path) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    h.update(sys.version.encode())
    return h.hexdigest()[:16]


def _fresh_venv(venv: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)
    _run([sys.executable, "-m", "venv", venv])
    _run([_py(venv), "-m", "pip", "install", "-q", "--upgrade", "pip"])


def _pip(venv: Path, *args: str) -> None:
    _run([_py(venv), "-m", "pip", "install", "-q", "--progress-bar", "off", *args])


def setup_standalone() -> Path:
    venv = VENVS / "standalone"
    stamp = _stamp(REQ / "standalone.txt", REQ / "test.txt", ROOT / "pyproject.toml")
    if (venv / ".stamp").is_file() and (venv / ".stamp").read_text() == stamp:
        return venv
    _fresh_venv(venv)
    _pip(venv, TORCH)
    _pip(venv, "-r", str(REQ / "standalone.txt"), "-r", str(REQ / "test.txt"))
    _pip(venv, "--no-deps", "-e", str(ROOT))
    (venv / ".stamp").write_text(stamp)
    return venv


def setup_a1111() -> Path:
    """Build the A1111 1.10.1 environment, then run our install.py in it as A1111 would."""
    venv = VENVS / "a1111"
    freeze = REQ / "a1111-1.10.1-freeze.txt"
    stamp = _stamp(freeze, REQ / "test.txt", ROOT / "install.py", ROOT / "lora_bakery" / "deps.py",
                   ROOT / "lora_bakery" / "deps_install.py")
    if (venv / ".stamp").is_file() and (venv / ".stamp").read_text() == stamp:
        return venv
    _fresh_venv(venv)
    _pip(venv, TORCH)
    base = [ln for ln in freeze.read_text().splitlines() if ln and not ln.lower().startswith(("torch==", "torchvision=="))]
    base_file = venv / "a1111-base.txt"
    base_file.write_text("\n".join(base) + "\n")
    # A real A1111 venv was resolved by pip once; installing its freeze without resolution
    # reproduces it exactly (torchvision is left out: PyPI's build does not import beside CPU torch).
    _pip(venv, "--no-deps", "-r", str(base_file))
    pre = subprocess.run([_py(venv), "-m", "pip", "freeze"], check=True, capture_output=True, text=True).stdout
    (venv / "pre-install-freeze.txt").write_text(pre)
    # A1111 runs install.py as a subprocess with PYTHONPATH=<webui root>, cwd = webui root.
    log = subprocess.run([_py(venv), str(ROOT / "install.py")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    (venv / "install-log.txt").write_text(log.stdout + log.stderr)
    print(log.stdout + log.stderr)
    if log.returncode != 0:
        raise SystemExit(f"install.py failed in the A1111 env (exit {log.returncode})")
    post = subprocess.run([_py(venv), "-m", "pip", "freeze"], check=True, capture_output=True, text=True).stdout
    (venv / "post-install-freeze.txt").write_text(post)
    # Test tools, every installed package held at its version.
    _pip(venv, "-c", str(venv / "post-install-freeze.txt"), "-r", str(REQ / "test.txt"))
    _pip(venv, "--no-deps", "-e", str(ROOT))
    (venv / ".stamp").write_text(stamp)
    return venv


def ensure_chromium() -> None:
    if shutil.which("chromium"):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print("chromium not found and cannot be installed here: browser tests will be skipped")
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    _run(["apt-get", "update", "-qq"], env=env)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"], env=env)


def cmd_demo(args: list[str]) -> int:
    venv = setup_standalone()
    out = args[0] if args else str(ROOT / "demo-out")
    _run([venv / "bin" / "bakery", "demo", "--out", out])
    return 0


def cmd_test(args: list[str]) -> int:
    ensure_chromium()
    st = setup_standalone()
    a1 = setup_a1111()
    _run([st / "bin" / "ruff", "check", ROOT])
    failures = 0
    for name, venv in (("standalone", st), ("a1111", a1)):
        print(f"\n===== pytest in the {name} environment =====", flush=True)
        env = {**os.environ, "BAKERY_TEST_ENV": name, "BAKERY_A1111_VENV": str(a1)}
        rc = subprocess.run([_py(venv), "-m", "pytest", "-q", *args], cwd=ROOT, env=env).returncode
        failures += rc != 0
    return 1 if failures else 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"demo", "test", "setup"}:
        print(__doc__)
        return 2
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "setup":
        which = rest[0] if rest else "both"
        if which in {"standalone", "both"}:
            setup_standalone()
        if which in {"a1111", "both"}:
            setup_a1111()
        return 0
    return cmd_demo(rest) if cmd == "demo" else cmd_test(rest)


if __name__ == "__main__":
    sys.exit(main())
