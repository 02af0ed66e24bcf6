"""The ``bakery`` command, run as users run it: a real console script in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bakery(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    exe = shutil.which("bakery", path=str(Path(sys.executable).parent))
    cmd = [exe, *args] if exe else [sys.executable, "-m", "lora_bakery", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_doctor_tiny_reports_all_parameters_shared(arch, request):
    proc = bakery("doctor", "--tiny", arch)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert f"architecture: {'sdxl' if arch == 'sdxl' else 'sd1'}" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("shared parameters:"))
    shared, total = line.split(":")[1].strip().split("/")
    assert shared == total and int(total) > 100
    assert "extra bytes for weights: 0 " in out
    # --ckpt on the same file reports the same numbers
    path = request.getfixturevalue(f"tiny_{arch}_path")
    info = json.loads(bakery("doctor", "--ckpt", str(path), "--json").stdout)
    assert info["views"]["shared"] == info["views"]["total"] == int(total)
    assert info["views"]["extra_bytes"] == 0
    assert info["features"], "feature table missing"


def test_doctor_explains_a_bad_checkpoint(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"garbage")
    proc = bakery("doctor", "--ckpt", str(bad))
    assert proc.returncode == 1
    assert "not a readable safetensors file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_writes_summary_and_an_image(tmp_path):
    out = tmp_path / "demo"
    proc = bakery("demo", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    stage = summary["stages"]["generate"]
    assert stage["status"] == "ok" and stage["seconds"] > 0
    assert stage["outputs"] and all((out / p).is_file() for p in stage["outputs"])
    from PIL import Image

    with Image.open(out / stage["outputs"][0]) as img:
        assert img.size == (64, 64)
    shared, total = stage["shared_parameters"].split("/")
    assert shared == total


def test_help_lists_subcommands():
    proc = bakery("--help")
    assert proc.returncode == 0
    for name in ("doctor", "app", "demo"):
        assert name in proc.stdout
