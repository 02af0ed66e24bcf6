"""Benchmark: LoRA Bakery's training step vs. a bare diffusers + peft loop, on the same model.

Both loops train a rank-4 LoRA on the U-Net's attention layers (kohya's default set: q/k/v/out,
proj_in/out, the feed-forward), batch 1, 64x64 images, AdamW, fp32 on an fp32 model (autocast in
the model's dtype on a half-precision one), text encoder frozen but run every step. The bare loop
is what a diffusers training script does: a second copy of the U-Net built from the checkpoint,
``unet.add_adapter(LoraConfig(...))``, noise, MSE, backward, step. Ours is ``train()`` end to end
(captions, cached latents, bucket batches, loss pipeline...) on zero-copy views of the host's tensors.

Each (model, loop) runs in a fresh process after the same "host load" (safetensors into RAM), so
peak RSS is comparable.

    .venvs/standalone/bin/python bench/train.py              # tiny SD1.5 + full-size SD1.5 (fp16, ~2 GB temp file)
    .venvs/standalone/bin/python bench/train.py --tiny-only

Prints: step time of each loop and the ratio (goal <= 1.03x), latent-cache throughput, peak RSS
growth, and the extra bytes each loop allocates for model weights (ours: views, goal ~0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]


def _rss_peak() -> int:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss it is not inherited from the parent across exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _load(ckpt: str):
    from lora_bakery.trainer.loop.checkpoint import load_checkpoint
    from lora_bakery.trainer.tiny import tiny_checkpoint

    tok = tiny_checkpoint("sd15").parent  # the tiny BPE's ids are valid in a full-size vocabulary too
    return load_checkpoint(ckpt, "cpu", tok)


def _config(data: Path, out: Path, steps: int):
    from lora_bakery.trainer.config import TrainConfig

    return TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data), "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}},
        "network": {"dim": 4, "alpha": 4, "train_text_encoder": False},
        "optimizer": {"lr": 1e-4, "scheduler": "constant", "max_grad_norm": 1.0},
        "training": {"epochs": 1, "max_steps": steps, "mixed_precision": "no", "batch_size": 1},
        "saving": {"output_dir": str(out), "output_name": "bench", "save_every_n_epochs": 0, "overwrite": True},
        "logging": {"tensorboard": False, "loss_plot": False},
    })


def run_ours(ckpt: str, steps: int, work: Path) -> dict:
    from lora_bakery.trainer.data.dataset import build_plan
    from lora_bakery.trainer.data.latents import LatentCache
    from lora_bakery.trainer.loop.toy import make_toy_dataset
    from lora_bakery.trainer.models import build_views
    from lora_bakery.trainer.train import TrainCallbacks, train

    parts = _load(ckpt)
    base = _rss_now()
    data = make_toy_dataset(work / "data", count=8, repeats=steps)
    config = _config(data, work / "out", steps)
    views = build_views(parts.parameters, parts.architecture)
    plan = build_plan(config, parts.architecture)
    start = time.perf_counter()
    LatentCache(plan, views.vae, seed=0).prepare()
    cache_ips = len(plan.items) / (time.perf_counter() - start)
    stamps: list[float] = []

    class Clock(TrainCallbacks):
        def on_step_end(self, info):
            stamps.append(time.perf_counter())

    result = train(config, parts, callbacks=Clock(), views=views)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])][1:]  # the first steps warm caches up
    return {"step": statistics.median(gaps), "steps": result.steps, "cache_ips": cache_ips,
            "extra_weight_bytes": views.report.extra_bytes, "rss_growth": _rss_peak() - base,
            "layers": next((m for m in result.messages if "trained parameters" in m), "")}


def run_bare(ckpt: str, steps: int, work: Path) -> dict:
    import diffusers
    import torch
    from peft import LoraConfig

    from lora_bakery.trainer.loop.text import TextConditioner
    from lora_bakery.trainer.models import build_views, noise_scheduler_config

    parts = _load(ckpt)
    base = _rss_now()
    views = build_views(parts.parameters, parts.architecture)  # only for the frozen text encoder + config
    unet = diffusers.UNet2DConditionModel(**views.configs.unet)  # the second copy a diffusers script makes
    unet.load_state_dict(views.unet.state_dict())
    unet.to(next(views.unet.parameters()).dtype)
    extra = sum(p.numel() * p.element_size() for p in unet.parameters())
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=TARGETS))
    for p in unet.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = diffusers.DDPMScheduler.from_config(noise_scheduler_config("sd1"))
    text = TextConditioner("sd1", views.text_encoders, parts.tokenizers)
    dtype = next(views.unet.parameters()).dtype
    autocast = torch.autocast("cpu", dtype=dtype) if dtype != torch.float32 else torch.autocast("cpu", enabled=False)
    latents = torch.randn(1, 4, 8, 8)
    stamps = []
    unet.train()
    for _ in range(steps):
        with torch.no_grad(), autocast:
            context, _ = text.encode(["sks, disc"], torch.device("cpu"))
        noise = torch.randn_like(latents)
        t = torch.randint(0, 1000, (1,))
        noisy = scheduler.add_noise(latents, noise, t)
        with autocast:
            pred = unet(noisy, t, context).sample
        loss = torch.nn.functional.mse_loss(pred.float(), noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        stamps.append(time.perf_counter())
    gaps = [b - a for a, b in zip(stamps, stamps[1:])][1:]
    return {"step": statistics.median(gaps), "steps": steps, "extra_weight_bytes": extra,
            "rss_growth": _rss_peak() - base, "layers": sum(1 for n, _ in unet.named_modules() if n.endswith("lora_A"))}


def _child(mode: str, ckpt: Path, steps: int, threads: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(ckpt), str(steps)], capture_output=True,
                         text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-only", action="store_true")
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per loop (tiny); full size uses a third")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs per loop (best step time, max RSS)")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        mode, ckpt, steps = args.child
        with tempfile.TemporaryDirectory() as work:
            fn = run_ours if mode == "ours" else run_bare
            print(json.dumps(fn(ckpt, int(steps), Path(work))))
        return
    from lora_bakery.trainer.tiny import tiny_checkpoint

    tmp = tempfile.TemporaryDirectory()
    cases = [("tiny SD1.5 (fp32)", tiny_checkpoint("sd15"), args.steps)]
    if not args.tiny_only:
        from views import make_full_sd15

        print("writing a full-size random SD1.5 checkpoint (fp16) ...", flush=True)
        cases.append(("full-size SD1.5 (fp16)", make_full_sd15(Path(tmp.name) / "sd15-random.safetensors"), max(4, args.steps // 3)))
    header = (f"{'model':<24}{'step s: ours':>14}{'bare':>9}{'ratio':>8}{'cache img/s':>13}"
              f"{'+RSS MiB: ours':>16}{'bare':>9}{'+weights MiB: ours':>20}{'bare':>9}")
    rows = []
    for name, ckpt, steps in cases:
        runs: dict[str, list[dict]] = {"ours": [], "bare": []}
        for _ in range(args.repeat if steps == args.steps else 1):  # alternate, so load swings hit both
            for mode in ("ours", "bare"):
                runs[mode].append(_child(mode, ckpt, steps, args.threads))
        ours, bare = (min(runs[m], key=lambda r: r["step"]) for m in ("ours", "bare"))
        for mode, best in (("ours", ours), ("bare", bare)):
            best["rss_growth"] = max(r["rss_growth"] for r in runs[mode])
        rows.append(f"{name:<24}{ours['step']:>14.4f}{bare['step']:>9.4f}{ours['step'] / bare['step']:>7.2f}x"
                    f"{ours['cache_ips']:>13.3g}{_mib(ours['rss_growth']):>16}{_mib(bare['rss_growth']):>9}"
                    f"{_mib(ours['extra_weight_bytes']):>20}{_mib(bare['extra_weight_bytes']):>9}")
        print(f"  {name}: ours {ours['layers']}; bare: {bare['layers']} peft LoRA layers", flush=True)
    print()
    print(header)
    for row in rows:
        print(row)
    print("\nstep = median seconds per optimizer step after warm-up, best of the alternating runs (full size: one run); ratio = ours / bare (goal <= 1.03);"
          " +RSS = peak RSS growth after the host's own load; +weights = bytes allocated for model weights.")
    tmp.cleanup()


if __name__ == "__main__":
    main()
