"""GPU benchmark: our trainer vs a bare diffusers+peft loop vs kohya's sd-scripts, side by side.

One prepared script for one short lease of a GPU machine (≤ 8 minutes on one H200). Each (case,
trainer) runs in a fresh process, one after another, on the same random full-size checkpoint and
dataset; every trainer is timed by the same optimizer-step clock (``bench/step_clock.py``).

Cases (``--cases``): ``sd15`` (512², rows batch 4, batch 4 without CUDA graphs, batch 8 with MFU:
model FLOPs counted by ``torch.utils.flop_counter`` on one step of the bare loop, over the chip's
dense bf16 peak) and ``sdxl`` (1024², batch 1). Each trainer runs all its rows of a case in one
process (one model load, as a webui would); kohya runs the first row. bf16 on CUDA; fp32 on a CPU.

    # here (CPU, no GPU): the small smoke mode, which CI-free development uses
    .venvs/standalone/bin/python bench/gpu.py --device cpu --tiny --kohya-python .venvs/kohya/bin/python
    # prepare what the GPU machine lacks (it has torch, transformers 5, accelerate, peft; no diffusers):
    python3 bench/gpu.py --prepare          # wheels into .whl/{ours,kohya}, kohya's code into .peers/
    # on the GPU machine (carry .whl and .peers):
    python3 bench/gpu.py --out $OUT

Prints a table (it/s, peak VRAM while training and while loading/caching, launch to first step,
ratios ours/kohya) and writes ``gpu.json`` and ``gpu.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path[:0] = [str(ROOT), str(BENCH)]

CASES = {
    # rows: (batch, CUDA graphs, VRAM saver); kohya runs the first row's batch; MFU is read at flops_batch
    "sd15": {"arch": "sd15", "resolution": 512, "steps": 25,
             "rows": [(4, True, None), (4, False, None), (8, True, None), (4, True, "gradient_checkpointing")],
             "flops_batch": 8},
    "sdxl": {"arch": "sdxl", "resolution": 1024, "steps": 15, "rows": [(1, True, None), (1, True, "fp8_base")]},
}
SIDES = ("ours", "bare", "kohya")
PEAK_BF16_TFLOPS = 989.4  # H100/H200 SXM dense bf16, vendor datasheet (measured here: ~790 on random data)
# What the GPU machine lacks, as wheels: ours (newest diffusers/transformers that import together,
# as our standalone env pins them) and kohya's own pins (its requirements.txt).
WHEELS = {
    "ours": ["diffusers==0.39.0", "transformers==4.57.6", "huggingface-hub==0.36.2", "tokenizers==0.22.1", "peft==0.21.2"],
    "kohya": ["diffusers==0.32.1", "transformers==4.54.1", "huggingface-hub==0.34.3", "tokenizers==0.21.4",
              "accelerate==1.6.0", "toml==0.10.2", "voluptuous==0.15.2", "imagesize==1.4.1"],
}
SHARED_KOHYA = ROOT.parent / "shared" / "peers" / "sd-scripts"


# -- preparation -------------------------------------------------------------------------------

def prepare() -> None:
    """Download the wheels the GPU machine lacks and copy kohya's code into ignored folders."""
    platform = [arg for n in (28, 27, 17) for arg in ("--platform", f"manylinux_2_{n}_x86_64")]
    for name, specs in WHEELS.items():
        dest = ROOT / ".whl" / name
        dest.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                        "--python-version", "3.12", "--implementation", "cp", *platform, "--platform",
                        "manylinux2014_x86_64", "-d", str(dest), *specs], check=True)
    if SHARED_KOHYA.is_dir():
        dest = ROOT / ".peers" / "sd-scripts"
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(SHARED_KOHYA, dest)
    print("ready: carry .whl and .peers")


def install_sites(work: Path) -> dict[str, str]:
    """``pip install --target`` each carried wheel set once; returns side → extra PYTHONPATH entry."""
    sites = {}
    for name in WHEELS:
        wheels = ROOT / ".whl" / name
        if not wheels.is_dir():
            continue
        site = work / f"site-{name}"
        if not (site / ".done").is_file():
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                            "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, sorted(wheels.glob("*.whl")))],
                           check=True)
            (site / ".done").write_text("ok")
        sites[name] = str(site)
    return sites


def kohya_dir(arg: str | None) -> Path | None:
    for candidate in ([Path(arg)] if arg else []) + [ROOT / ".peers" / "sd-scripts", SHARED_KOHYA]:
        if (candidate / "train_network.py").is_file():
            return candidate
    return None


# -- inputs ------------------------------------------------------------------------------------

def tokenizer_dirs(arch: str, tiny: bool, work: Path) -> tuple[str, str]:
    """Our tokenizer folder and kohya's ``--tokenizer_cache_dir`` (the tiny BPE: its ids fit a full vocabulary)."""
    from lora_bakery.trainer.tiny import tiny_checkpoint

    src = tiny_checkpoint("sdxl" if arch == "sdxl" else "sd15").parent
    kohya = work / "kohya-tokenizers"
    for sub, repo in (("tokenizer", "openai_clip-vit-large-patch14"), ("tokenizer_2", "laion_CLIP-ViT-bigG-14-laion2B-39B-b160k")):
        if (src / sub).is_dir() and not (kohya / repo).is_dir():
            shutil.copytree(src / sub, kohya / repo)
    return str(src), str(kohya)


def build_case(name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from fullsize import make_checkpoint, make_dataset
    from gpu_sides import kohya_dataset_toml

    from lora_bakery.trainer.tiny import tiny_checkpoint

    spec = CASES[name]
    case = {k: v for k, v in spec.items() if k != "rows"}
    case.update(name=name, device=args.device, tiny=args.tiny, warmup=args.warmup, precision=args.precision)
    if args.tiny:  # CPU smoke mode: tiny models, small images, few steps
        case.update(resolution=64, steps=min(case["steps"], 8))
    if args.steps:
        case["steps"] = args.steps
    case["variants"] = [{"row": f"{name}-b{batch}" + ("" if graphs else "-eager") + (f"-{saver}" if saver else ""),
                         "batch": batch, "graphs": graphs, "saver": saver} for batch, graphs, saver in spec["rows"]]
    case["batch"] = spec["rows"][0][0]  # kohya's
    cuda = args.device == "cuda"
    t0 = time.perf_counter()
    ckpt = tiny_checkpoint(case["arch"]) if args.tiny else make_checkpoint(
        case["arch"], work / f"{case['arch']}-random-{'bf16' if cuda else 'fp32'}.safetensors",
        dtype="bfloat16" if cuda else "float32", device=args.device)
    case["ckpt"] = case["kohya_ckpt"] = str(ckpt)
    if args.tiny and args.kohya_fullsize:  # kohya only reads published shapes
        case["kohya_ckpt"] = str(make_checkpoint(case["arch"], work / f"{case['arch']}-random-bf16.safetensors",
                                                 dtype="bfloat16"))
    case["repeats"] = 10
    images = 2 * max(row[0] for row in spec["rows"])
    data_root = work / f"data-{case['resolution']}-{images}"
    image_dir = make_dataset(data_root, count=images, size=case["resolution"], repeats=case["repeats"])
    case["data_root"] = str(data_root)
    case["tokenizer"], case["kohya_tokenizers"] = tokenizer_dirs(case["arch"], args.tiny, work)
    toml_path = work / f"{name}-kohya.toml"
    toml_path.write_text(kohya_dataset_toml(case, image_dir))
    case["kohya_dataset"] = str(toml_path)
    case["prep_seconds"] = time.perf_counter() - t0
    return case


# -- running -----------------------------------------------------------------------------------

def run_side(side: str, case: dict, args: argparse.Namespace, work: Path, sites: dict[str, str]) -> dict[str, Any]:
    """One trainer's rows of a case in a fresh process with a time limit: row → summary, or the failure."""
    out = work / f"out-{case['name']}-{side}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    case = dict(case, out=str(out))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
           "TOKENIZERS_PARALLELISM": "false", "STEP_CLOCK_WARMUP": str(args.warmup)}
    result_file = out / "clock.json"
    if side == "kohya":
        kdir = kohya_dir(args.kohya)
        if kdir is None:
            return {"error": "kohya's sd-scripts not found (bench/gpu.py --prepare, or --kohya DIR)"}
        if args.tiny and case["kohya_ckpt"] == case["ckpt"]:
            return {"error": "skipped in --tiny mode (kohya reads only published shapes; --kohya-fullsize runs it)"}
        case = dict(case, kohya_dir=str(kdir), ckpt=case["kohya_ckpt"])
        from gpu_sides import kohya_args

        python = args.kohya_python or sys.executable
        cmd = [python, str(BENCH / "step_clock.py"), str(result_file), *kohya_args(case)]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (sites.get("kohya"), str(kdir)) if p)
        cwd = str(kdir)
    else:
        cmd = [sys.executable, __file__, "--child", side, json.dumps(case), str(result_file)]
        env["PYTHONPATH"] = os.pathsep.join(p for p in (sites.get("ours"), str(ROOT), str(BENCH)) if p)
        cwd = str(ROOT)
    spawned = time.time()
    log = out / "log.txt"
    try:
        with open(log, "w") as f:
            proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s", "log_tail": _tail(log)}
    if args.verbose or case.get("profile"):
        print(_tail(log, 6000 if case.get("profile") else 2000), flush=True)
    if proc.returncode != 0 or not result_file.is_file():
        return {"error": f"exit {proc.returncode}", "log_tail": _tail(log)}
    rows = json.loads(result_file.read_text())
    if side == "kohya":
        rows = {case["variants"][0]["row"]: rows}
    first = min((r["first_step_wall"] for r in rows.values() if r.get("first_step_wall")), default=None)
    if first:  # launch to the first step of the process's first run
        rows[next(iter(rows))]["launch_to_first_step"] = first - spawned
    return rows


def _tail(path: Path, n: int = 2500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def child(side: str, case_json: str, result_file: str) -> None:
    import torch

    if case_json and json.loads(case_json)["device"] == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    from gpu_sides import run_bare, run_ours

    case = json.loads(case_json)
    summary = (run_ours if side == "ours" else run_bare)(case)
    Path(result_file).write_text(json.dumps(summary))


# -- report ------------------------------------------------------------------------------------

def _gib(n: Any) -> str:
    return f"{n / 2**30:.2f}" if isinstance(n, (int, float)) and n else "-"


def _its(r: dict) -> float | None:
    s = r.get("step", {}).get("median") if "error" not in r else None
    return 1.0 / s if s and s == s else None


def report(results: dict[str, dict[str, dict]], cases: dict[str, dict], device_name: str) -> str:
    """The table as Markdown, with ratios ours/kohya and MFU where FLOPs were counted."""
    lines = [f"device: {device_name}", "",
             "| case | trainer | it/s | s/step | peak VRAM train GiB | peak VRAM load+cache GiB | launch→1st step s | "
             "MFU | ours/kohya it/s | ours/kohya VRAM |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, sides in results.items():
        flops = sides.get("bare", {}).get("flops_per_step")
        k = sides.get("kohya", {})
        for side, r in sides.items():
            if "error" in r:
                lines.append(f"| {name} | {side} | failed: {r['error']} | | | | | | | |")
                continue
            its = _its(r)
            mfu = f"{flops * its / (PEAK_BF16_TFLOPS * 1e12):.1%}" if flops and its and cases[name]["device"] == "cuda" else "-"
            ratio_its = ratio_mem = ""
            if side == "ours" and _its(k):
                ratio_its = f"{its / _its(k):.2f}×"
                if r.get("vram_train_peak") and k.get("vram_train_peak"):
                    ratio_mem = f"{r['vram_train_peak'] / k['vram_train_peak']:.2f}×"
            first = r.get("launch_to_first_step")
            first_text = f"{first:.1f}" if first else ""
            lines.append(f"| {name} | {side} | {its:.2f} | {r['step']['median']:.4f} | {_gib(r.get('vram_train_peak'))} | "
                         f"{_gib(r.get('vram_setup_peak'))} | {first_text} | {mfu} | {ratio_its} | {ratio_mem} |"
                         if its else f"| {name} | {side} | - | | | | | | | |")
    checks = [f"{name}: host model bitwise unchanged {r.get('host_unchanged')}, VRAM left allocated beyond the host's "
              f"weights {_gib(r.get('leftover_vram')) if r.get('leftover_vram') else '0'} GiB"
              for name, sides in results.items() for side, r in sides.items() if side == "ours" and "error" not in r]
    lines += [""] + [f"- ours, {c}" for c in checks]
    for name, sides in results.items():  # the estimate logged before the first step, against the measured peak
        r = sides.get("ours", {})
        if r.get("estimate_gib") and r.get("vram_train_peak"):
            lines.append(f"- ours, {name}: VRAM estimate {r['estimate_gib']:.2f} GiB, measured peak "
                         f"{_gib(r['vram_train_peak'])} GiB allocated / {_gib(r.get('vram_reserved_peak'))} reserved "
                         f"(estimate/allocated {r['estimate_gib'] * 2**30 / r['vram_train_peak']:.2f})")
    for name, sides in results.items():  # the same run with and without CUDA graphs: the same losses?
        eager, graphed = sides.get("ours", {}), results.get(name.removesuffix("-eager"), {}).get("ours", {})
        if name.endswith("-eager") and eager.get("losses") and graphed.get("losses"):
            diff = max(abs(a - b) for a, b in zip(eager["losses"], graphed["losses"]))
            lines.append(f"- ours, {name.removesuffix('-eager')} with vs without CUDA graphs: largest step-loss "
                         f"difference {diff:.2e} over {min(len(eager['losses']), len(graphed['losses']))} steps")
    lines += ["", "it/s = 1 / median seconds between optimizer steps after warm-up (CUDA synchronised at each step); "
              "peak VRAM = torch.cuda.max_memory_allocated, training = after the first step, load+cache = before it; "
              f"MFU = FLOPs of one step (torch.utils.flop_counter, bare loop) × it/s / {PEAK_BF16_TFLOPS} TFLOP/s."]
    return "\n".join(lines)


def device_name(device: str) -> str:
    import torch

    if device == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}"
    return f"CPU ({os.cpu_count()} threads), torch {torch.__version__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="tiny models, 64 px, few steps (CPU smoke test)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated, of ours, bare, kohya")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default per case)")
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    parser.add_argument("--timeout", type=int, default=240, help="seconds one (case, trainer) run may take")
    parser.add_argument("--profile", type=int, default=0, help="also profile N steps of ours and bare in the first case")
    parser.add_argument("--kohya", help="kohya sd-scripts folder (default .peers/sd-scripts, then ../shared/peers)")
    parser.add_argument("--kohya-python", help="python for kohya (default: this one, with the carried wheels)")
    parser.add_argument("--kohya-fullsize", action="store_true", help="--tiny: run kohya on a full-size model at 64 px")
    parser.add_argument("--precision", choices=["bf16", "fp16", "no"], help="mixed precision (default: bf16 on CUDA, no on a CPU)")
    parser.add_argument("--no-wheels", action="store_true", help="ignore .whl (use the packages of each python as they are)")
    parser.add_argument("--work", help="scratch folder for checkpoints and runs (default: a temp folder)")
    parser.add_argument("--out", help="folder for gpu.json and gpu.md")
    parser.add_argument("--verbose", action="store_true", help="print each run's log tail")
    parser.add_argument("--prepare", action="store_true", help="download wheels and copy kohya's code, then exit")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    if args.prepare:
        prepare()
        return 0
    work = Path(args.work or tempfile.mkdtemp(prefix="bakery-gpu-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    sites = {} if args.no_wheels else install_sites(work)
    if sites.get("ours"):  # the parent builds checkpoints with our code: the same packages as the children
        sys.path.insert(0, sites["ours"])
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: use --device cpu --tiny", file=sys.stderr)
        return 2
    name = device_name(args.device)
    print(f"{name}; wheels: {sorted(sites) or 'none'}; setup {time.perf_counter() - started:.0f} s", flush=True)
    results: dict[str, dict[str, dict]] = {}
    cases: dict[str, dict] = {}
    for i, case_name in enumerate(c for c in args.cases.split(",") if c):
        case = build_case(case_name, args, work)
        if i == 0 and args.profile:
            case["profile"] = args.profile
        print(f"{case_name}: inputs ready in {case['prep_seconds']:.0f} s", flush=True)
        for side in (s for s in args.sides.split(",") if s):
            t0 = time.perf_counter()
            rows = run_side(side, case, args, work, sites)
            if "error" in rows:
                rows = {case["variants"][0]["row"]: rows}
                print("    " + rows[next(iter(rows))].get("log_tail", "")[-1500:].replace("\n", "\n    "), flush=True)
            for row, r in rows.items():
                results.setdefault(row, {})[side] = r
                cases[row] = case
                print(f"  {side} {row}: {_line(r)}", flush=True)
            print(f"  ({side}: {time.perf_counter() - t0:.0f} s)", flush=True)
            if args.out:  # after every trainer, so a time limit never loses what was measured
                _write(Path(args.out), name, results)
    table = report(results, cases, name)
    print("\n" + table + f"\n\ntotal {time.perf_counter() - started:.0f} s", flush=True)
    if args.out:
        _write(Path(args.out), name, results, table)
    return 0


def _line(r: dict) -> str:
    """One trainer's row as a line, printed as soon as it is measured."""
    if "error" in r:
        return f"failed: {r['error']}"
    return (f"{_its(r) or 0:.2f} it/s, VRAM train {_gib(r.get('vram_train_peak'))} GiB, load+cache "
            f"{_gib(r.get('vram_setup_peak'))} GiB, RSS {_gib(r.get('rss_peak'))} GiB"
            + (f", host unchanged {r['host_unchanged']}, left {_gib(r.get('leftover_vram')) or 0} GiB"
               if "host_unchanged" in r else "") + (f"; {' | '.join(r['notes'])}" if r.get("notes") else ""))


def _write(out: Path, device: str, results: dict, table: str | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps({"device": device, "results": results}, indent=1, default=str))
    if table:
        (out / "gpu.md").write_text(table + "\n")


if __name__ == "__main__":
    sys.exit(main())
