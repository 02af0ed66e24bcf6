"""Tiny real wheels and throwaway venvs for installer tests (no network, no build backend).

A wheel is a zip with the package files plus ``<name>-<version>.dist-info/{METADATA,WHEEL,RECORD}``;
writing it by hand takes milliseconds, where ``pip wheel`` would need setuptools and an index.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def _digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(folder: Path, name: str, version: str, files: Mapping[str, str],
                requires: Sequence[str] = ()) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` into ``folder`` and return its path.

    Args:
        folder (`Path`): where the wheel goes (a ``--find-links`` folder).
        name (`str`): distribution name (also fine as an import name: use letters only).
        version (`str`): its version.
        files (`Mapping[str, str]`): archive path → text, e.g. ``{"probe/__init__.py": "X = 1"}``.
        requires (`Sequence[str]`): ``Requires-Dist`` lines, e.g. ``["keepme>=2"]``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    meta = "Metadata-Version: 2.1\n" f"Name: {name}\n" f"Version: {version}\n"
    meta += "".join(f"Requires-Dist: {r}\n" for r in requires)
    content = {**files, f"{info}/METADATA": meta,
               f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: wheelkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{path},{_digest(text.encode())},{len(text.encode())}" for path, text in content.items()]
    record.append(f"{info}/RECORD,,")
    content[f"{info}/RECORD"] = "\n".join(record) + "\n"
    whl = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in content.items():
            z.writestr(path, text)
    return whl


def make_venv(path: Path) -> Path:
    """A plain venv (with pip, no system site-packages); returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def offline_env(root: Path, **extra: str) -> dict[str, str]:
    """Environment for a subprocess that must not reach any index or read pip's machine config."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "BAKERY_", "PYTHON")) and k not in {"INDEX_URL", "COMMANDLINE_ARGS", "VIRTUAL_ENV"}}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONPATH=str(root), PYTHONDONTWRITEBYTECODE="1")
    env.update(extra)
    return env


def freeze(python: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``{canonical name: version}`` of what is installed in ``python``'s environment."""
    out = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                         check=True, capture_output=True, text=True, env=dict(env)).stdout
    pins = (ln.split("==", 1) for ln in out.splitlines() if "==" in ln)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def shadow_pip(folder: Path, marker: Path) -> Path:
    """A fake ``pip`` package: put ``folder`` first on PYTHONPATH and any ``python -m pip`` call
    writes ``marker`` and fails. Proves a run made no pip call, without touching the code under test."""
    pkg = folder / "pip"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        f"import sys\nopen({str(marker)!r}, 'a').write(' '.join(sys.argv) + '\\n')\nsys.exit(3)\n")
    return folder
