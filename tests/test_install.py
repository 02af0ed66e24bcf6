"""``install.py`` for real: as A1111 runs it (``python install.py``, PYTHONPATH = webui root).

* In a plain venv with no index reachable, nothing can be installed: every feature must end up
  switched off with a reason, the process must exit 0 (the webui starts), nothing installed may
  change, and the next launch must make no pip call.
* In the A1111 1.10.1 environment built by ``tools/devenv.py setup a1111`` (``BAKERY_A1111_VENV``):
  every package that was there keeps its version, diffusers/peft land at versions that import,
  and a second ``install.py`` makes no pip call and is fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.wheelkit import freeze, make_venv, offline_env, shadow_pip

ROOT = Path(__file__).resolve().parent.parent
INSTALL = ROOT / "install.py"


def _run_install(python: Path, env: dict[str, str], cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.monotonic()
    proc = subprocess.run([str(python), str(INSTALL), *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=900)
    return proc, time.monotonic() - t0


@pytest.mark.slow
def test_install_py_never_breaks_the_webui_when_nothing_can_be_installed(tmp_path):
    python = make_venv(tmp_path / "venv")
    links = tmp_path / "empty-links"
    links.mkdir()
    status = tmp_path / "status.json"
    env = offline_env(ROOT, PIP_FIND_LINKS=str(links), BAKERY_DEPS_STATUS=str(status))
    before = freeze(python, env)

    proc, _ = _run_install(python, env, tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "core unavailable: torch is not installed (LoRA Bakery never installs it" in out
    assert "tagging unavailable: onnxruntime: pip could not install it (ERROR: No matching distribution" in out
    assert "training unavailable" in out and "Traceback" not in out + proc.stderr
    assert freeze(python, env) == before
    records = json.loads(status.read_text())["records"]
    assert records["diffusers"]["detail"] == "diffusers not installed: needs torch, transformers, safetensors, huggingface-hub"
    assert not any(r["ok"] for r in records.values())

    # next launch: the verdicts stand while nothing changed, so no pip call, no output, fast
    marker = tmp_path / "pip-called.txt"
    shadowed = {**env, "PYTHONPATH": f"{shadow_pip(tmp_path / 'shadow', marker)}{os.pathsep}{ROOT}"}
    proc2, took = _run_install(python, shadowed, tmp_path)
    assert proc2.returncode == 0 and proc2.stdout == "" and not marker.exists(), proc2.stdout + proc2.stderr
    assert took < 5

    # the on-first-use path follows the same rules: masks needs core, which cannot work here
    code = "from lora_bakery import deps; print(repr(deps.ensure_installed('masks', log=print)))"
    proc3 = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=shadowed, cwd=tmp_path)
    assert proc3.returncode == 0, proc3.stderr
    assert proc3.stdout.strip() == "(False, 'transparent-background not installed: needs torch')"
    assert not marker.exists()


def _freeze_file(path: Path) -> dict[str, str]:
    pins = (ln.split("==", 1) for ln in path.read_text().splitlines() if "==" in ln and not ln.startswith("#"))
    return {name.lower().replace("_", "-"): version for name, version in pins}


@pytest.fixture()
def a1111_venv() -> Path:
    value = os.environ.get("BAKERY_A1111_VENV")
    if not value:
        pytest.skip("BAKERY_A1111_VENV is not set: build the env with `python3 tools/devenv.py setup a1111` "
                    "and point BAKERY_A1111_VENV at .venvs/a1111 (CI always does)")
    venv = Path(value)
    for name in ("pre-install-freeze.txt", "post-install-freeze.txt", "install-log.txt"):
        assert (venv / name).is_file(), f"{venv} was not built by tools/devenv.py (no {name})"
    return venv


@pytest.mark.a1111env
def test_install_py_in_the_a1111_environment_changes_nothing_and_adds_what_imports(a1111_venv, tmp_path):
    python = a1111_venv / "bin" / "python"
    pre = _freeze_file(a1111_venv / "pre-install-freeze.txt")
    post = _freeze_file(a1111_venv / "post-install-freeze.txt")
    log = (a1111_venv / "install-log.txt").read_text()
    assert {"torch", "gradio", "transformers", "accelerate", "pillow", "numpy", "safetensors"} <= set(pre)
    changed = {n: (v, post.get(n)) for n, v in pre.items() if post.get(n) != v}
    assert not changed, f"install.py changed packages of the host: {changed}\n{log}"
    assert "diffusers" in post and "peft" in post, log
    assert "WARNING" not in log and "Traceback" not in log, log

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAKERY_", "PYTHON"))}
    env["PYTHONPATH"] = str(ROOT)
    # the test tools were added later with everything held: the host's versions still stand now
    live = freeze(python, env)
    assert {n: live.get(n) for n in pre} == pre

    code = ("import lora_bakery.deps as d\nfrom diffusers import UNet2DConditionModel, StableDiffusionPipeline\n"
            "import peft\nfrom peft import LoraConfig\nLoraConfig(r=4, target_modules=['to_q'], use_dora=True)\n"
            "s = d.feature_status()\nprint(s)\nassert s['core'][0] and s['training'][0] and s['tagging'][0], s")
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # install.py again, as on every webui launch: no pip call (a shadow pip records any), fast
    marker = tmp_path / "pip-called.txt"
    shadowed = {**env, "PYTHONPATH": f"{shadow_pip(tmp_path / 'shadow', marker)}{os.pathsep}{ROOT}"}
    for _ in range(2):  # the first re-run may verify once if the status file was deleted since
        again, took = _run_install(python, shadowed, tmp_path)
        assert again.returncode == 0 and not marker.exists(), again.stdout + again.stderr
    assert again.stdout == "" and took < 3, (again.stdout, took)
