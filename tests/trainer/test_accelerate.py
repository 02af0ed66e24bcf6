"""Two processes under ``accelerate launch`` (gloo on CPU) train one LoRA together.

Each process trains half of every epoch's batches, gradients are averaged, only the main process
writes. Works with accelerate 0.21 (A1111 env) and 1.x (standalone). On a CPU-only machine
accelerate starts several processes with ``--multi_gpu``; its ``--cpu`` flag starts only one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lora_bakery.trainer.config import TrainConfig
from lora_bakery.trainer.loop.toy import make_toy_dataset


def _accelerate() -> list[str]:
    exe = Path(sys.executable).with_name("accelerate")
    if exe.is_file():
        return [str(exe)]
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate is not installed")
    return [sys.executable, "-m", "accelerate.commands.launch"]


@pytest.mark.slow
def test_two_processes_make_one_file(tmp_path, tiny_sd15_path):
    from lora_bakery.trainer.saving import load_network

    data = make_toy_dataset(tmp_path / "data", count=4, repeats=1)
    config = TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data), "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}},
        "network": {"dim": 4, "alpha": 4},
        "training": {"epochs": 1, "mixed_precision": "no"},
        "saving": {"output_dir": str(tmp_path / "out"), "output_name": "ddp"},
    })
    path = config.save(tmp_path / "cfg.toml")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_CONFIG_FILE": str(tmp_path / "none.yaml")}
    cmd = _accelerate() + [
        "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "--main_process_port", "29517",
        "-m", "lora_bakery.trainer", "train", str(path), "--ckpt", str(tiny_sd15_path), "--device", "cpu",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(p.name for p in (tmp_path / "out").glob("*.safetensors"))
    assert files == ["ddp.safetensors"]
    tensors, meta = load_network(tmp_path / "out" / "ddp.safetensors")
    # 4 images, batch 1, 2 processes: 2 optimizer steps, each on 2 images
    assert meta["ss_steps"] == "2" and tensors
    assert proc.stdout.count("ddp.safetensors") == 1  # printed by the main process only
