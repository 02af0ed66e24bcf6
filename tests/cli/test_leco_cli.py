"""``bakery leco``, run as users run it: a real console script in a subprocess on the tiny model."""

from __future__ import annotations

from lora_bakery.trainer.leco import LecoConfig
from lora_bakery.trainer.saving import load_network

from .test_cli import bakery

CONFIG = """
[[prompts]]
target = "a dog"
positive = "a dog, red"
unconditional = "a dog, blue"
resolution = 64

[network]
modules = "xattn"

[training]
steps = 4
lr = 0.01
precision = "fp32"
max_denoising_steps = 4

[saving]
output_dir = "{out}"
save_every = 2

[preview]
multipliers = [-1.0, 1.0]
width = 64
height = 64
steps = 2
"""


def test_leco_trains_saves_and_previews(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the tiny model gains nothing from more threads
    out = tmp_path / "out"
    config = tmp_path / "leco.toml"
    config.write_text(CONFIG.format(out=out.as_posix()), encoding="utf-8")
    proc = bakery("leco", str(config), "--tiny", "sd15")
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout.split()
    assert str(out / "leco_slider-000002.safetensors") in printed
    assert str(out / "leco_slider.safetensors") in printed
    assert (out / "preview" / "leco_slider-000004.png").is_file()
    assert "finished: 4/4 steps" in proc.stderr
    assert "extremes changed" in proc.stderr
    tensors, meta = load_network(out / "leco_slider.safetensors")
    assert all(k.startswith("lora_unet_") for k in tensors)
    assert "a dog, red" in meta["ss_training_comment"]

    again = bakery("leco", str(config), "--tiny", "sd15")  # refuses to overwrite
    assert again.returncode == 1 and "already exists" in again.stderr


def test_leco_example_and_bad_input(tmp_path) -> None:
    example = tmp_path / "example.toml"
    proc = bakery("leco", "--example", str(example))
    assert proc.returncode == 0, proc.stderr
    assert LecoConfig.load(example).prompts[0].positive == "long_skirt"

    bad = tmp_path / "bad.toml"
    bad.write_text('[[prompts]]\ntarget = "skirt"\n\n[training]\nprecision = "fp16"\n', encoding="utf-8")
    proc = bakery("leco", str(bad), "--tiny", "sd15")
    assert proc.returncode == 2 and "training.precision" in proc.stderr and "NaN" in proc.stderr

    empty = tmp_path / "empty.toml"
    empty.write_text('[[prompts]]\ntarget = ""\n', encoding="utf-8")
    proc = bakery("leco", str(empty), "--tiny", "sd15")
    assert proc.returncode == 2 and "prompts[0].target: is empty" in proc.stderr


def test_demo_stage_leco(tmp_path, monkeypatch) -> None:
    import json

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "demo"
    proc = bakery("demo", "--out", str(out), "--only", "leco")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    stage = json.loads((out / "summary.json").read_text())["stages"]["leco"]
    assert stage["status"] == "ok" and stage["steps"] == 6 and len(stage["losses"]) == 6
    assert all((out / p).is_file() for p in stage["outputs"])
    names = {p.rsplit("/", 1)[-1] for p in stage["outputs"]}
    assert {"demo_slider-000003.safetensors", "demo_slider.safetensors", "demo_slider-000006.png", "leco.toml"} <= names
    assert [c["step"] for c in stage["extreme_changes"]] == [6]


def test_headless_trainer_entry_runs_leco(tmp_path, tiny_sd15_path, monkeypatch) -> None:
    """``python -m lora_bakery.trainer leco`` (no extension code, no previews) writes the same files."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "out"
    config = tmp_path / "leco.toml"
    config.write_text(CONFIG.format(out=out.as_posix()), encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "lora_bakery.trainer", "leco", str(config), "--ckpt", str(tiny_sd15_path),
                           "--device", "cpu"], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert str(out / "leco_slider.safetensors") in proc.stdout.split()
    assert not (out / "preview").exists()
    tensors, _ = load_network(out / "leco_slider.safetensors")
    assert tensors and all(k.startswith("lora_unet_") for k in tensors)
