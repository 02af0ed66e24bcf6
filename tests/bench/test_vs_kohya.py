"""``bench/vs_kohya.py``'s own logic, without kohya's venv: statistics, verdicts, the summary line, configs.

The benchmark itself (kohya's venv, a 4 GB checkpoint, minutes of training) is run by hand; these
keep its helpers from rotting silently.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import kohya_env  # noqa: E402
import vs_kohya  # noqa: E402
from step_clock import step_stats  # noqa: E402


def test_step_stats_leave_out_warmup_and_take_the_median():
    stamps = [0.0, 5.0, 6.0, 7.0, 8.5, 9.5, 10.5]  # gaps 5, 1, 1, 1.5, 1, 1
    stats = step_stats(stamps, warmup=3)
    assert stats["n"] == 4 and stats["median"] == 1.0 and stats["max"] == 1.5
    assert step_stats(stamps, warmup=1)["max"] == 5.0
    assert math.isnan(step_stats([1.0], warmup=3)["median"])


def test_ratios_and_best_of_alternating_runs():
    assert vs_kohya.ratio(0.9, 1.8) == 0.5
    assert math.isnan(vs_kohya.ratio(None, 1.0)) and math.isnan(vs_kohya.ratio(1.0, 0.0))
    assert math.isnan(vs_kohya.ratio(float("nan"), 1.0))
    assert vs_kohya.geomean([0.5, 2.0, float("nan")]) == pytest.approx(1.0)
    runs = [{"step": {"median": 2.0}, "rss_peak": 10, "launch_to_first_step": 30.0, "wall": 50.0},
            {"step": {"median": 1.5}, "rss_peak": 12, "launch_to_first_step": 35.0, "wall": 55.0},
            {"error": "exit 1"}]
    best = vs_kohya.best_of(runs)
    assert best["step"]["median"] == 1.5 and best["rss_peak"] == 12 and best["launch_to_first_step"] == 30.0
    assert best["runs"] == 2
    assert vs_kohya.best_of([{"error": "timed out"}]) == {"error": "timed out"}


def test_summary_line_is_one_line_in_the_agreed_format():
    assert vs_kohya.summary_line(0.871, 0.5549, []) == "kohya: step_ratio=0.87 mem_ratio=0.55 interop=ok"
    line = vs_kohya.summary_line(1.2, float("nan"), ["ours-loha:keys(missing=2,unexpected=0)", "compare:grid"])
    assert line == "kohya: step_ratio=1.20 mem_ratio=nan interop=FAIL:ours-loha:keys(missing=2,unexpected=0);compare:grid"
    assert "\n" not in line and " " not in line.split("interop=")[1]
    assert vs_kohya.summary_line(0.9, 0.5, [], checked=False).endswith("interop=skipped")
    assert vs_kohya.summary_line(0.9, 0.5, ["a_training_run_failed"], checked=False).endswith("interop=FAIL:a_training_run_failed")


def _good_compare() -> dict:
    return {"files": [{}, {}], "norms": {"rc": 0, "nonzero_blocks": [16, 16]}, "grid": {"exists": True, "cells": 2}}


def test_interop_failures_name_what_is_wrong():
    keys = {"ours-trained": {"missing": [], "unexpected": [], "modules": 128}}
    errors = {"ours-trained": {"rel": 2e-6, "delta_rel": None}, "ours-locon": {"rel": 3e-6, "delta_rel": 1e-5}}
    assert vs_kohya.interop_failures(errors, keys, _good_compare()) == []
    bad_keys = {"ours-lokr": {"missing": ["a"], "unexpected": ["b", "c"], "modules": 5}}
    assert vs_kohya.interop_failures({}, bad_keys, _good_compare()) == ["ours-lokr:keys(missing=1,unexpected=2)"]
    assert vs_kohya.interop_failures({}, {"x": {"missing": [], "unexpected": [], "modules": 0}},
                                     _good_compare()) == ["x:no_modules"]
    wrong = {"ours-locon": {"rel": 3e-4, "delta_rel": 0.02}, "nan": {"rel": float("nan"), "delta_rel": None}}
    assert vs_kohya.interop_failures(wrong, {}, _good_compare()) == [
        "ours-locon:rel=3.0e-04", "ours-locon:delta_rel=2.0e-02", "nan:rel=nan"]
    compare = _good_compare()
    compare["files"] = [{}]
    compare["norms"]["nonzero_blocks"] = [0]
    assert vs_kohya.interop_failures({}, {}, compare) == ["compare:epochs=1", "compare:block_norms=0", "compare:grid"]


def test_table_has_both_sides_and_the_ratios():
    kohya = {"step": {"median": 2.0, "n": 9}, "rss_peak": 8 * 2**30, "launch_to_first_step": 60.0, "wall": 90.0}
    ours = {"step": {"median": 1.6, "n": 9}, "rss_peak": 4 * 2**30, "launch_to_first_step": 30.0, "wall": 50.0}
    text = vs_kohya.table({"64px-b1": {"ours": ours, "kohya": kohya}, "128px-b4": {"ours": ours, "kohya": {"error": "exit 1"}}})
    rows = text.splitlines()
    assert rows[2] == "| 64px-b1 | ours | 1.600 | 9 | 30.0 | 50.0 | 4.00 | 0.80 | 0.50 |"
    assert rows[3] == "| 64px-b1 | kohya | 2.000 | 9 | 60.0 | 90.0 | 8.00 |  |  |"
    assert rows[5] == "| 128px-b4 | kohya | failed: exit 1 | | | | | | |"


def test_kohya_requirements_leave_out_gpu_only_and_editable(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "accelerate==1.6.0\n# a comment\nbitsandbytes\n\ntoml==0.10.2  # pinned\n-e .\n")
    assert kohya_env.requirements(tmp_path) == ["accelerate==1.6.0", "toml==0.10.2"]


def test_both_trainers_get_the_same_settings(tmp_path):
    """Our TOML and kohya's command line say the same LoRA, steps, seed, data and precision."""
    from gpu_sides import kohya_args

    from lora_bakery.trainer.config import TrainConfig

    ctx = {"work": tmp_path, "ckpt": "/x/sd15.safetensors", "kohya": tmp_path / "sd-scripts", "kohya_tok": "/tok"}
    case = vs_kohya.prepare_case(64, 4, 7, ctx)
    ours = TrainConfig.load(case["ours_toml"])
    args = kohya_args({**case, "out": str(tmp_path / "out")})

    def flag(name: str) -> str:
        return args[args.index(name) + 1]

    assert ours.network.dim == int(flag("--network_dim")) == 16
    assert ours.network.alpha == float(flag("--network_alpha")) == 8.0
    assert ours.network.train_text_encoder is False and "--network_train_unet_only" in args
    assert ours.optimizer.lr == float(flag("--learning_rate")) and ours.optimizer.type.lower() == flag("--optimizer_type").lower()
    assert ours.training.max_steps == int(flag("--max_train_steps")) == 7
    assert ours.training.seed == int(flag("--seed")) and ours.training.mixed_precision == flag("--mixed_precision")
    assert ours.training.cache_latents and "--cache_latents" in args
    dataset = ours.dataset.datasets[0]
    assert flag("--dataset_config") == str(tmp_path / "64px-b4-dataset.toml")
    assert dataset.batch_size == 4 and dataset.resolution == 64 and ours.dataset.general.enable_bucket is False
    assert len(list(Path(dataset.subsets[0].image_dir).glob("*.png"))) == 8
