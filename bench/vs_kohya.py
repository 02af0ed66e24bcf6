"""CPU benchmark and interop check: ``bakery train`` vs kohya's ``train_network.py``, side by side.

Both trainers get the same random full-size SD1.5 checkpoint (fp32, ``bench/fullsize.py``), the
same captioned images and kohya dataset config, and the same LoRA run (``bench/gpu_sides.py``:
rank 16 / alpha 8 on kohya's default U-Net targets, text encoder frozen but run every step, AdamW
lr 1e-4, grad-norm clip 1, seed 0, latents cached, fp32, SDPA, no loader workers). kohya runs
unmodified in its own venv (``bench/kohya_env.py``, built once under ``.venvs/kohya``) under
``accelerate launch --cpu --num_processes 1``; ours is the ``bakery`` command. Both run inside
``bench/step_clock.py``: one optimizer-step clock and the training process's peak RSS for both.
Runs alternate (ours, kohya, then kohya, ours...) so load swings hit both sides.

Then the interop check (``bench/kohya_interop.py`` here, ``bench/kohya_side.py`` in kohya's venv):
our files in kohya's ``networks.lora`` (applied and merged) and in LyCORIS's kohya entry point,
same outputs as our adapted model; kohya's run folder in our Compare path.

    .venvs/standalone/bin/python bench/vs_kohya.py --quick   # 64 px batch 1 + interop, < 20 min on 2 cores
    .venvs/standalone/bin/python bench/vs_kohya.py           # 64 and 128 px, batch 1 and 4 + interop

The last line is ``kohya: step_ratio=R mem_ratio=M interop=ok`` (or ``interop=FAIL:<what>``); ratios
are ours/kohya (lower is better for both): the case's in ``--quick``, the geometric mean over the
cases otherwise. Goal on CPU: step_ratio <= 0.9, mem_ratio <= 0.6.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

QUICK = [(64, 1)]
FULL = [(64, 1), (64, 4), (128, 1), (128, 4)]
REL_TOL = 1e-5  # outputs, ours vs kohya, fp32
DELTA_TOL = 1e-3  # the adapter's change of the output, where it is large enough to measure


# -- pure helpers (tests/bench/test_vs_kohya.py) ---------------------------------------------

def ratio(ours: float | None, kohya: float | None) -> float:
    """ours / kohya, ``nan`` when either is missing or kohya's is 0."""
    if not ours or not kohya or any(isinstance(v, float) and math.isnan(v) for v in (ours, kohya)):
        return float("nan")
    return ours / kohya


def geomean(values: list[float]) -> float:
    """Geometric mean of the finite positive values (``nan`` when there are none)."""
    good = [v for v in values if v and v > 0 and math.isfinite(v)]
    return math.exp(sum(map(math.log, good)) / len(good)) if good else float("nan")


def best_of(runs: list[dict]) -> dict:
    """One side of one case over its alternating runs: fastest median step, highest peak RSS, fastest start."""
    done = [r for r in runs if "error" not in r]
    if not done:
        return runs[-1] if runs else {"error": "not run"}
    fastest = min(done, key=lambda r: r["step"]["median"])
    return {**fastest, "rss_peak": max(r["rss_peak"] for r in done),
            "launch_to_first_step": min(r["launch_to_first_step"] for r in done),
            "wall": min(r["wall"] for r in done), "runs": len(done)}


def summary_line(step_ratio: float, mem_ratio: float, failures: list[str], checked: bool = True) -> str:
    """The bench's last line: ``kohya: step_ratio=R mem_ratio=M interop=ok`` or ``interop=FAIL:<what>``
    (``interop=skipped`` with ``--no-interop``)."""
    interop = "ok" if not failures else "FAIL:" + ";".join(f.replace(" ", "_") for f in failures)
    interop = interop if checked or failures else "skipped"
    return f"kohya: step_ratio={step_ratio:.2f} mem_ratio={mem_ratio:.2f} interop={interop}"


def interop_failures(errors: dict[str, dict], keys: dict[str, dict], compare: dict) -> list[str]:
    """What the interop check found wrong (empty: all good).

    Args:
        errors: per file label, ``{"rel": max relative output error of U-Net and TE, "delta_rel":
            relative error of the adapter's change where measurable (else ``None``)}``.
        keys: per file label, kohya/LyCORIS ``load_state_dict`` report (``missing``, ``unexpected``).
        compare: ``kohya_interop.compare_path``'s report on kohya's run folder.
    """
    failures = []
    for label, info in keys.items():
        if info.get("missing") or info.get("unexpected"):
            failures.append(f"{label}:keys(missing={len(info.get('missing', []))},unexpected={len(info.get('unexpected', []))})")
        if not info.get("modules"):
            failures.append(f"{label}:no_modules")
    for label, err in errors.items():
        if not err["rel"] <= REL_TOL:
            failures.append(f"{label}:rel={err['rel']:.1e}")
        if err.get("delta_rel") is not None and not err["delta_rel"] <= DELTA_TOL:
            failures.append(f"{label}:delta_rel={err['delta_rel']:.1e}")
    if len(compare.get("files", [])) < 2:
        failures.append(f"compare:epochs={len(compare.get('files', []))}")
    norms = compare.get("norms", {})
    if norms.get("rc") != 0 or not norms.get("nonzero_blocks") or min(norms["nonzero_blocks"]) == 0:
        failures.append(f"compare:block_norms={norms.get('rc')}")
    grid = compare.get("grid", {})
    if not grid.get("exists") or grid.get("cells") != len(compare.get("files", [])):
        failures.append("compare:grid")
    return failures


def _gib(n: float | None) -> str:
    return f"{n / 2**30:.2f}" if n else "-"


def table(results: dict[str, dict[str, dict]]) -> str:
    """Markdown table: both sides' numbers per case, and the ratios ours/kohya."""
    lines = ["| case | trainer | s/step (median) | gaps | launch→1st step s | whole run s | peak RSS GiB | "
             "ours/kohya step | ours/kohya RSS |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for case, sides in results.items():
        kohya = sides.get("kohya", {})
        for side, r in sides.items():
            if "error" in r:
                lines.append(f"| {case} | {side} | failed: {r['error']} | | | | | | |")
                continue
            step_r = mem_r = ""
            if side == "ours" and "error" not in kohya:
                step_r = f"{ratio(r['step']['median'], kohya['step']['median']):.2f}"
                mem_r = f"{ratio(r['rss_peak'], kohya['rss_peak']):.2f}"
            lines.append(f"| {case} | {side} | {r['step']['median']:.3f} | {r['step']['n']} | "
                         f"{r['launch_to_first_step']:.1f} | {r['wall']:.1f} | {_gib(r['rss_peak'])} | {step_r} | {mem_r} |")
    return "\n".join(lines)


# -- running ---------------------------------------------------------------------------------

def _env(extra_path: str, warmup: int) -> dict:
    return {**os.environ, "PYTHONPATH": extra_path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "STEP_CLOCK_WARMUP": str(warmup),
            "PYTHONDONTWRITEBYTECODE": "1"}


def _bakery() -> str:
    script = Path(sys.executable).with_name("bakery")
    return str(script if script.is_file() else ROOT / "lora_bakery" / "__main__.py")


def prepare_case(size: int, batch: int, steps: int, ctx: dict) -> dict:
    """Images, kohya's dataset config and our TOML for one case."""
    from fullsize import make_dataset
    from gpu_sides import ALPHA, LR, RANK, kohya_dataset_toml

    from lora_bakery.trainer.config import toml_io

    work: Path = ctx["work"]
    name = f"{size}px-b{batch}"
    case = {"name": name, "arch": "sd15", "device": "cpu", "resolution": size, "batch": batch, "steps": steps,
            "repeats": 10, "ckpt": ctx["ckpt"], "kohya_dir": str(ctx["kohya"]), "kohya_tokenizers": ctx["kohya_tok"]}
    images = make_dataset(work / f"data-{size}-{max(8, 2 * batch)}", count=max(8, 2 * batch), size=size, repeats=10)
    kohya_toml = work / f"{name}-dataset.toml"
    kohya_toml.write_text(kohya_dataset_toml(case, images))
    case["kohya_dataset"] = str(kohya_toml)
    ours = {"dataset": toml_io.loads(kohya_toml.read_text()),
            "network": {"dim": RANK, "alpha": float(ALPHA), "train_text_encoder": False},
            "optimizer": {"type": "adamw", "lr": LR, "scheduler": "constant", "max_grad_norm": 1.0},
            "training": {"max_steps": steps, "batch_size": batch, "mixed_precision": "no", "seed": 0,
                         "cache_latents": True, "gradient_checkpointing": False},
            "saving": {"output_name": "ours", "save_every_n_epochs": 0, "save_precision": "float", "overwrite": True},
            "logging": {"tensorboard": False, "loss_plot": False}}
    case["ours_toml"] = str(work / f"{name}-ours.toml")
    Path(case["ours_toml"]).write_text(toml_io.dumps(ours))
    return case


def _command(side: str, case: dict, out: Path, ctx: dict, wrapper: list[str], save_every: int = 0) -> tuple:
    """The command line and environment of one training run inside ``wrapper`` (the clock or the profiler)."""
    from gpu_sides import kohya_args

    if side == "ours":
        cmd = [sys.executable, *wrapper, _bakery(), "train", case["ours_toml"], "--ckpt", case["ckpt"],
               "--tokenizer", ctx["ours_tok"], "--out", str(out), "--no-samples"]
        return cmd, _env(str(ROOT), ctx["warmup"])
    args = kohya_args({**case, "out": str(out)})
    if save_every:
        args += ["--save_every_n_steps", str(save_every)]
    cmd = [str(ctx["kohya_python"]), "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--num_cpu_threads_per_process", str(os.cpu_count() or 1), *wrapper, *args]
    return cmd, _env(str(ctx["kohya"]), ctx["warmup"])


def run_side(side: str, case: dict, run: int, ctx: dict, save_every: int = 0) -> dict:
    """One training run in a fresh process under the step clock; its summary or why it failed."""
    out = ctx["work"] / f"out-{case['name']}-{side}-{run}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    clock = out / "clock.json"
    cmd, env = _command(side, case, out, ctx, [str(BENCH / "step_clock.py"), str(clock)], save_every)
    spawned, t0 = time.time(), time.perf_counter()
    log = out / "log.txt"
    try:
        with open(log, "w") as f:
            proc = subprocess.run(cmd, cwd=str(out), env=env, stdout=f, stderr=subprocess.STDOUT, timeout=ctx["timeout"])
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {ctx['timeout']} s", "log": str(log)}
    wall = time.perf_counter() - t0
    if proc.returncode or not clock.is_file():
        return {"error": f"exit {proc.returncode}", "log": str(log), "tail": log.read_text(errors="replace")[-1500:]}
    summary = json.loads(clock.read_text())
    if summary["steps"] != case["steps"]:
        return {"error": f"{summary['steps']} optimizer steps clocked, expected {case['steps']}", "log": str(log)}
    summary.update(wall=wall, out=str(out), launch_to_first_step=(summary.get("first_step_wall") or spawned) - spawned,
                   files=sorted(p.name for p in out.glob("*.safetensors")))
    return summary


def profile_side(side: str, case: dict, ctx: dict, count: int) -> Path:
    """One more run under ``bench/step_profile.py`` (``count`` steps after warm-up); the table's file."""
    out = ctx["work"] / f"profile-{case['name']}-{side}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    table_file = out / "profile.txt"
    wrapper = [str(BENCH / "step_profile.py"), str(table_file), str(ctx["warmup"]), str(count)]
    cmd, env = _command(side, {**case, "steps": ctx["warmup"] + count + 1}, out, ctx, wrapper)
    with open(out / "log.txt", "w") as f:
        subprocess.run(cmd, cwd=str(out), env=env, stdout=f, stderr=subprocess.STDOUT, timeout=ctx["timeout"])
    return table_file


def rel_errors(ours_file: Path, kohya_file: Path, labels: list[str]) -> dict[str, dict]:
    """Per file label: max relative output error (U-Net, TE) and the relative error of the adapter's change."""
    from safetensors.torch import load_file

    ours, kohya = load_file(str(ours_file)), load_file(str(kohya_file))
    out = {}
    for label in labels:
        rel, delta_rel = 0.0, None
        for part in ("unet", "te"):
            a, b = ours[f"{label.removesuffix('-merged')}.{part}"], kohya[f"{label}.{part}"]
            rel = max(rel, float((a - b).norm() / a.norm()))
            da, db = a - ours[f"base.{part}"], b - kohya[f"base.{part}"]
            if float(da.norm() / a.norm()) > 1e-3:  # the change is far above float noise: compare it too
                delta_rel = max(delta_rel or 0.0, float((da - db).norm() / da.norm()))
        out[label] = {"rel": rel, "delta_rel": delta_rel}
    base = {p: float((ours[f"base.{p}"] - kohya[f"base.{p}"]).norm() / ours[f"base.{p}"].norm()) for p in ("unet", "te")}
    out["base"] = {"rel": max(base.values()), "delta_rel": None}
    return out


def interop(ctx: dict, ours_file: str, kohya_run: str) -> list[str]:
    """Run both halves of the interop check; print what they found; return the failures."""
    work = ctx["work"] / "interop"
    shutil.rmtree(work, ignore_errors=True)
    steps = [([sys.executable, str(BENCH / "kohya_interop.py"), str(work), ctx["ckpt"], ctx["ours_tok"], ours_file,
               kohya_run], _env(str(ROOT), 0)),
             ([str(ctx["kohya_python"]), str(BENCH / "kohya_side.py"), str(work / "interop.json")],
              _env(str(ctx["kohya"]), 0))]
    for cmd, env in steps:
        proc = subprocess.run(cmd, cwd=str(ctx["work"]), env=env, capture_output=True, text=True, timeout=ctx["timeout"])
        if proc.returncode:
            print(proc.stdout[-2000:] + proc.stderr[-3000:], flush=True)
            return [f"{Path(cmd[1]).stem}_exit_{proc.returncode}"]
    plan = json.loads((work / "interop.json").read_text())
    labels = [f["label"] for f in plan["files"]] + [f"{f['label']}-merged" for f in plan["files"] if f.get("merge")]
    errors = rel_errors(work / "ours-outputs.safetensors", work / "kohya-outputs.safetensors", labels)
    keys = json.loads((work / "kohya-keys.json").read_text())
    compare = json.loads((work / "compare.json").read_text())
    print("\ninterop (ours vs kohya/LyCORIS, fp32; rel = ‖ours−theirs‖/‖ours‖, max of U-Net and TE output):")
    for label, err in errors.items():
        k = keys.get(label, {})
        loader = next((f["loader"] for f in plan["files"] if f["label"] == label.removesuffix("-merged")), "")
        how = "merged" if label.endswith("-merged") else loader
        delta = f"{err['delta_rel']:.1e}" if err["delta_rel"] is not None else "-"
        extra = (f" modules={k['modules']}/{k['file_layers']} missing={len(k['missing'])} "
                 f"unexpected={len(k['unexpected'])}") if k else ""
        print(f"  {label:<22} {how:<8} rel={err['rel']:.1e} delta_rel={delta}{extra}")
    print(f"  kohya's run in our Compare path: epochs {compare['labels']}, block norms non-zero blocks per file "
          f"{compare['norms']['nonzero_blocks']}, grid {compare['grid']['cells']} cells")
    errors.pop("base")
    return interop_failures(errors, keys, compare)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 px batch 1 only (and the interop check)")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the timing (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="alternating runs per side and case (default %(default)s)")
    parser.add_argument("--work", type=Path, default=ROOT / ".venvs" / "kohya-bench",
                        help="scratch folder; the checkpoint is kept there between runs (default %(default)s)")
    parser.add_argument("--kohya", help="kohya's sd-scripts folder (default shared/peers/sd-scripts)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds one run may take")
    parser.add_argument("--no-interop", action="store_true", help="timing only")
    parser.add_argument("--profile", type=int, default=0,
                        help="also profile N steps of each side in the first case (torch.profiler, CPU op table)")
    parser.add_argument("--interop-only", action="store_true",
                        help="only the interop check, on the first case's files of an earlier run in --work")
    args = parser.parse_args()
    import kohya_env
    from gpu import tokenizer_dirs

    started = time.perf_counter()
    kohya = kohya_env.kohya_dir(args.kohya)
    kohya_python = kohya_env.ensure(kohya)
    print("kohya venv:", kohya_env.check(kohya), flush=True)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / "sd15-random-fp32.safetensors"
    if not ckpt.is_file():  # in a child: 4 GB of tensors would stay in this process's heap during the runs
        subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from fullsize import make_checkpoint; "
                        "make_checkpoint('sd15', Path(sys.argv[1]), dtype='float32')", str(ckpt)],
                       env=_env(os.pathsep.join([str(ROOT), str(BENCH)]), 0), check=True)
    ours_tok, kohya_tok = tokenizer_dirs("sd15", False, work)
    ctx = {"work": work, "ckpt": str(ckpt), "kohya": kohya, "kohya_python": kohya_python, "ours_tok": ours_tok,
           "kohya_tok": kohya_tok, "warmup": args.warmup, "timeout": args.timeout}
    print(f"inputs ready in {time.perf_counter() - started:.0f} s; CPU threads {os.cpu_count()}", flush=True)
    results: dict[str, dict[str, dict]] = {}
    failures: list[str] = []
    if args.interop_only:
        first = f"{QUICK[0][0]}px-b{QUICK[0][1]}"
        failures = interop(ctx, str(work / f"out-{first}-ours-0" / "ours.safetensors"), str(work / f"out-{first}-kohya-0"))
        print(summary_line(float("nan"), float("nan"), failures))
        return 0 if not failures else 1
    for i, (size, batch) in enumerate(QUICK if args.quick else FULL):
        case = prepare_case(size, batch, args.steps, ctx)
        runs: dict[str, list[dict]] = {"ours": [], "kohya": []}
        for run in range(args.repeat):
            for side in (("ours", "kohya") if run % 2 == 0 else ("kohya", "ours")):
                # kohya's first run also saves once mid-run (not at the end too): two files for epoch discovery
                save_every = args.steps // 2 + 1 if (i == 0 and run == 0 and side == "kohya") else 0
                r = run_side(side, case, run, ctx, save_every)
                runs[side].append(r)
                state = r.get("error") or f"{r['step']['median']:.3f} s/step, peak RSS {_gib(r['rss_peak'])} GiB"
                print(f"  {case['name']} {side} #{run}: {state} ({time.perf_counter() - started:.0f} s)", flush=True)
                if "error" in r and r.get("tail"):
                    print("    " + r["tail"].replace("\n", "\n    "), flush=True)
        results[case["name"]] = {side: best_of(rs) for side, rs in runs.items()}
        if i == 0 and args.profile:
            for side in ("ours", "kohya"):
                path = profile_side(side, case, ctx, args.profile)
                text = path.read_text() if path.is_file() else "(no profile: see its log.txt)"
                print(f"\n--- {side}, {case['name']}: {text[:6000]}", flush=True)
        if i == 0 and not args.no_interop:
            ours_run, kohya_run = runs["ours"][0], runs["kohya"][0]
            if "error" in ours_run or "error" in kohya_run:
                failures.append("no_trained_files")
            else:
                failures += interop(ctx, str(Path(ours_run["out"]) / "ours.safetensors"), kohya_run["out"])
    print("\n" + table(results))
    print(f"\nCPU threads {os.cpu_count()}; {args.steps} steps per run, median of the gaps after {args.warmup} "
          f"warm-up steps; peak RSS = VmHWM of the training process; total {time.perf_counter() - started:.0f} s")
    step_r = geomean([ratio(s["ours"].get("step", {}).get("median"), s["kohya"].get("step", {}).get("median"))
                      for s in results.values()])
    mem_r = geomean([ratio(s["ours"].get("rss_peak"), s["kohya"].get("rss_peak")) for s in results.values()])
    if any("error" in r for s in results.values() for r in s.values()):
        failures.append("a_training_run_failed")
    print(summary_line(step_r, mem_r, failures, checked=not args.no_interop))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
