"""Layer rules of docs/architecture.md, checked on the source, and the decoy-package guarantee."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "lora_bakery"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # resolve relative imports against the module's package
                base = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return names


def _py_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_trainer_imports_no_gradio_no_webui_no_extension():
    bad = {}
    for path in _py_files(PKG / "trainer"):
        offending = {
            n for n in _imports(path)
            if n.split(".")[0] in {"gradio", "modules", "modules_forge", "backend"}
            or n.startswith("lora_bakery.extension")
        }
        if offending:
            bad[str(path.relative_to(ROOT))] = sorted(offending)
    assert not bad, f"trainer/ must not import the UI or the webui: {bad}"


def test_only_the_host_package_imports_webui_internals():
    bad = {}
    for path in _py_files(PKG):
        if (PKG / "extension" / "host") in path.parents:
            continue
        offending = {n for n in _imports(path) if n.split(".")[0] in {"modules", "modules_forge", "backend", "ldm", "sgm"}}
        if offending:
            bad[str(path.relative_to(ROOT))] = sorted(offending)
    assert not bad, f"only lora_bakery/extension/host may import webui internals: {bad}"


def test_works_with_decoy_trainer_and_extension_packages_first_on_sys_path(tmp_path, tiny_sd15_path):
    """Another webui extension (sd-webui-traintrain) ships a top-level ``trainer``; ours must not care."""
    for name in ("trainer", "extension", "scripts"):
        pkg = tmp_path / "decoys" / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"DECOY = {name!r}\nfrom . import models\n" if name == "trainer" else f"DECOY = {name!r}\n")
        if name == "trainer":
            (pkg / "models.py").write_text("def build_views(*a, **k):\n    raise RuntimeError('decoy trainer used')\n")
    code = textwrap.dedent(
        f"""
        import sys, trainer, extension
        assert trainer.DECOY == "trainer" and extension.DECOY == "extension"
        from lora_bakery.cli import main
        rc = main(["doctor", "--ckpt", {str(tiny_sd15_path)!r}])
        assert rc == 0, rc
        from lora_bakery.extension.host.diffusers_host import DiffusersHost
        from lora_bakery.extension.host.base import GenerationRequest
        img = DiffusersHost({str(tiny_sd15_path)!r}, device="cpu").generate(
            [GenerationRequest(prompt="cat", width=64, height=64, steps=1, seed=1)])
        assert len(img) == 1
        import trainer as again
        assert again.DECOY == "trainer"
        print("DECOY-OK")
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "decoys"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "DECOY-OK" in proc.stdout
    assert "shared parameters:" in proc.stdout
