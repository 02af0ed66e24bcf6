"""kohya's own Python environment for ``bench/vs_kohya.py``: built once under ``.venvs/kohya`` (git-ignored).

* torch: the same CPU wheel as ours (``torch==2.13.0``, as ``tools/devenv.py`` installs it), so
  the comparison is of the trainers, not of two torch builds.
* kohya's pinned ``requirements.txt`` from its own checkout, less ``bitsandbytes`` (CUDA only) and
  ``-e .`` (its code is run in place from the checkout, never copied into this repository).
* torchvision: kohya imports only ``torchvision.transforms``. PyPI's torchvision wheels are CUDA
  builds; from 0.17 on their import registers fake kernels for C ops (``torchvision::nms``) that
  do not load beside CPU torch, and ``import torchvision`` fails. 0.16.2 still guards them, so it is
  installed without dependencies (its own torch pin would replace ours); the check below proves
  ``from torchvision import transforms`` works.
* ``lycoris-lora`` 3.4.0: the LyCORIS package whose kohya entry point (``lycoris.kohya``) loads
  LoHa/LoKr files in kohya (4.x cannot build its network over kohya's SD1 U-Net, see ``EXTRA``).

The folder's ``.stamp`` holds a hash of these inputs: a changed pin rebuilds it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venvs" / "kohya"
# shared/ lies beside the checkout; a worktree under it (wt/NAME) finds it further up.
KOHYA = next((p / "shared" / "peers" / "sd-scripts" for p in ROOT.parents
              if (p / "shared" / "peers" / "sd-scripts").is_dir()), ROOT.parent / "shared" / "peers" / "sd-scripts")
TORCH = "torch==2.13.0"  # tools/devenv.py's
TORCHVISION = "torchvision==0.16.2"
# 4.x's kohya entry point fails on kohya's own SD1 U-Net before it reads a file ("duplicated lora
# name: lora_unet_time_embedding_linear_1" in LycorisNetworkKohya()); 3.4.0 is the last 3.x.
EXTRA = ["lycoris-lora==3.4.0"]
LEFT_OUT = ("bitsandbytes", "-e ")
CHECK = ("import torch, torchvision, accelerate, diffusers, transformers, lycoris.kohya\n"
         "from torchvision import transforms\n"
         "transforms.Compose([transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])\n"
         "import train_network, networks.lora\n"
         "print(torch.__version__, torchvision.__version__, diffusers.__version__, transformers.__version__)\n")


def kohya_dir(arg: str | None = None) -> Path:
    """kohya's sd-scripts checkout: ``arg``, else ``shared/peers/sd-scripts`` beside the checkout."""
    path = Path(arg) if arg else KOHYA
    if not (path / "train_network.py").is_file():
        raise SystemExit(f"kohya's sd-scripts not found at {path} (pass --kohya DIR)")
    return path


def requirements(kohya: Path) -> list[str]:
    """kohya's pinned requirements, less what cannot or need not be installed here."""
    lines = []
    for raw in (kohya / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line and not line.startswith(LEFT_OUT):
            lines.append(line)
    return lines


def python(venv: Path = VENV) -> Path:
    return venv / "bin" / "python"


def _stamp(kohya: Path) -> str:
    text = "\n".join([TORCH, TORCHVISION, *EXTRA, *requirements(kohya), sys.version])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _pip(venv: Path, *args: str) -> None:
    cmd = [str(python(venv)), "-m", "pip", "install", "-q", "--progress-bar", "off", *args]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def check(kohya: Path, venv: Path = VENV) -> str:
    """Import what the bench needs in the venv; returns the versions line, raises with its stderr."""
    out = subprocess.run([str(python(venv)), "-c", CHECK], cwd=kohya, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(kohya), "PYTHONDONTWRITEBYTECODE": "1"})
    if out.returncode:
        raise RuntimeError(f"kohya's venv does not import: {out.stderr[-1500:]}")
    return out.stdout.strip().splitlines()[-1]


def ensure(kohya: Path, venv: Path = VENV) -> Path:
    """Build the venv unless its stamp matches; return its python."""
    stamp = _stamp(kohya)
    if (venv / ".stamp").is_file() and (venv / ".stamp").read_text() == stamp:
        return python(venv)
    print(f"building kohya's venv in {venv} (once; a few minutes)", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    _pip(venv, TORCH)
    _pip(venv, *requirements(kohya), *EXTRA)
    _pip(venv, "--no-deps", TORCHVISION)
    print("kohya venv:", check(kohya, venv), flush=True)
    (venv / ".stamp").write_text(stamp)
    return python(venv)
