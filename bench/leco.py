"""Benchmark: LoRA Bakery's LECO step vs. a bare implementation of the same step, on the same model.

Both loops train a rank-4 / alpha-1 slider on the U-Net's transformer layers (``--modules``), one
prompt entry, AdamW at 1e-4, fp32 on the CPU (bf16 autocast on CUDA), and draw the same random
sequence (entry, k, noise) from one seeded generator, so step i does the same work in both:
k DDIM steps of the target at CFG 3 with the slider on, frozen ε(positive/neutral/unconditional),
ε_slider(target), MSE, backward, AdamW step.

The bare loop is what LECO's ``train_lora.py`` does: a second U-Net (here a plain diffusers
``UNet2DConditionModel`` loaded with the same weights), peft ``add_adapter(LoraConfig)`` for the
slider, ``enable/disable_adapters`` around the frozen predictions, prompt embeddings encoded once.
Ours is ``train_leco()`` end to end on zero-copy views of the host's tensors (kohya LoRA modules,
prompt cache, saving disabled until the end).

Each loop runs in a fresh process after the same "host load" (safetensors into RAM), so peak
memory is comparable: peak RSS growth on the CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

    .venvs/standalone/bin/python bench/leco.py                 # tiny SD1.5, 64 px, 12 steps
    .venvs/standalone/bin/python bench/leco.py --ckpt model.safetensors --res 512 --steps 20

Prints the mean step time of each loop (after 2 warm-up steps), the ratio (goal <= 1.05x) and
the peak memory of each.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPTS = {"target": "a dog", "positive": "a dog, red", "unconditional": "a dog, blue", "neutral": "a dog"}
MODULE_NAMES = {  # peft target_modules (regex on the module path) for each LECO module set
    "full": r".*(attentions|transformer).*\.(to_q|to_k|to_v|to_out\.0|proj_in|proj_out|ff\.net\.0\.proj|ff\.net\.2)$",
    "xattn": r".*attn2\.(to_q|to_k|to_v|to_out\.0)$",
}
WARMUP = 2


def _peak(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated())
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _host(ckpt: str):
    from lora_bakery.extension.host.diffusers_host import DiffusersHost
    from lora_bakery.trainer.tiny import tiny_checkpoint

    host = DiffusersHost(ckpt, tokenizer_dir=tiny_checkpoint("sd15").parent / "tokenizer")
    host.model()
    return host


def _config(out: Path, steps: int, res: int, modules: str):
    from lora_bakery.trainer.leco import LecoConfig

    return LecoConfig.from_dict({
        "prompts": [{**PROMPTS, "resolution": res, "guidance_scale": 1.0}],
        "network": {"dim": 4, "alpha": 1.0, "modules": modules},
        "training": {"steps": steps, "lr": 1e-4, "precision": "bf16", "seed": 0},
        "saving": {"output_dir": str(out), "save_every": 0, "overwrite": True},
        "preview": {"enabled": False},
    })


def run_ours(ckpt: str, steps: int, res: int, modules: str, work: Path) -> dict:
    import torch

    from lora_bakery.trainer.leco import LecoCallbacks, train_leco

    host = _host(ckpt)
    views = host.views()  # the bare loop builds them too (for the config and the prompt cache)
    device = next(iter(host.model().parameters.values())).device
    base = _peak(device)
    stamps: list[float] = []

    class Clock(LecoCallbacks):
        def on_step(self, step, total, output, lr):
            if device.type == "cuda":
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    config = _config(work, steps, res, modules)
    if device.type != "cuda":
        config.training.precision = "fp32"
    start = time.perf_counter()
    result = train_leco(config, host.model(), views=views, callbacks=Clock())
    times = [b - a for a, b in zip(stamps, stamps[1:])][WARMUP - 1:]
    return {"step": statistics.mean(times), "setup": stamps[0] - start, "peak": _peak(device) - base,
            "layers": result.messages[-1], "last_loss": result.losses[-1]}


def _bare_unet(host):
    """A plain diffusers U-Net holding a copy of the host's weights (what LECO builds from the file)."""
    import diffusers

    views = host.views()
    unet = diffusers.UNet2DConditionModel.from_config(views.configs.unet)
    unet.load_state_dict(views.unet.state_dict())
    return unet.to(next(views.unet.parameters()).device).eval().requires_grad_(False)


def run_bare(ckpt: str, steps: int, res: int, modules: str) -> dict:
    import diffusers
    import torch
    import torch.nn.functional as F
    from peft import LoraConfig

    from lora_bakery.trainer.leco.embeds import PromptCache
    from lora_bakery.trainer.models import noise_scheduler_config

    host = _host(ckpt)
    parts = host.model()
    device = next(iter(parts.parameters.values())).device
    host.views()
    base = _peak(device)
    unet = _bare_unet(host)
    cache = PromptCache(host.views(), parts.tokenizers, 1, torch.float32)
    cache.encode_all(PROMPTS.values())
    unet.add_adapter(LoraConfig(r=4, lora_alpha=1.0, init_lora_weights="gaussian", target_modules=MODULE_NAMES[modules]))
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    scheduler = diffusers.DDIMScheduler.from_config(noise_scheduler_config(parts.architecture, parts.prediction))
    autocast = torch.autocast("cuda", torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    generator = torch.Generator().manual_seed(0)

    def eps(x, t, names, lora: bool):
        (unet.enable_adapters if lora else unet.disable_adapters)()
        cond = cache.batch(names, x.shape[0], (res, res))
        with autocast:
            return unet(x.repeat(len(names), 1, 1, 1), t, **cond).sample.float()

    stamps = []
    start = time.perf_counter()
    for _ in range(steps):
        torch.randint(0, 1, (1,), generator=generator)  # entry (one entry: same draw as ours)
        k = int(torch.randint(1, 50, (1,), generator=generator))
        x = torch.randn(1, 4, res // 8, res // 8, generator=generator).to(device) * scheduler.init_noise_sigma
        scheduler.set_timesteps(50, device=device)
        with torch.no_grad():
            for t in scheduler.timesteps[:k]:
                u, c = eps(x, t, [PROMPTS["unconditional"], PROMPTS["target"]], True).chunk(2)
                x = scheduler.step(u + 3.0 * (c - u), t, x).prev_sample
            t = torch.tensor([999 - int(k * 1000 / 50)], device=device)
            pos, neu, unc = eps(x, t, [PROMPTS["positive"], PROMPTS["neutral"], PROMPTS["unconditional"]], False).chunk(3)
        loss = F.mse_loss(eps(x, t, [PROMPTS["target"]], True), neu + 1.0 * (pos - unc))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    times = [b - a for a, b in zip(stamps, stamps[1:])][WARMUP - 1:]
    return {"step": statistics.mean(times), "setup": stamps[0] - start, "peak": _peak(device) - base,
            "layers": f"{sum(1 for n, _ in unet.named_modules() if n.endswith('lora_A'))} peft LoRA layers",
            "last_loss": float(loss)}


def _child(mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--ckpt", args.ckpt, "--steps", str(args.steps),
           "--res", str(args.res), "--modules", args.modules, "--threads", str(args.threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", help="single-file checkpoint (default: the tiny SD1.5)")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--res", type=int, default=64)
    parser.add_argument("--modules", choices=sorted(MODULE_NAMES), default="full")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["ours", "bare"])
    args = parser.parse_args()
    if not args.ckpt:
        from lora_bakery.trainer.tiny import tiny_checkpoint

        args.ckpt = str(tiny_checkpoint("sd15"))
    if args.child:
        import torch

        torch.set_num_threads(args.threads)
        if args.child == "ours":
            with tempfile.TemporaryDirectory() as work:
                out = run_ours(args.ckpt, args.steps, args.res, args.modules, Path(work))
        else:
            out = run_bare(args.ckpt, args.steps, args.res, args.modules)
        print(json.dumps(out))
        return
    ours, bare = _child("ours", args), _child("bare", args)
    print(f"LECO step, {Path(args.ckpt).name}, {args.res} px, modules {args.modules}, {args.steps} steps, {args.threads} thread(s)")
    for name, r in (("ours", ours), ("bare", bare)):
        print(f"  {name:5s} {r['step'] * 1000:8.1f} ms/step   setup {r['setup']:.2f} s   peak +{_mib(r['peak'])}   {r['layers']}")
    print(f"  ratio ours/bare: {ours['step'] / bare['step']:.3f}x (goal <= 1.05x)")


if __name__ == "__main__":
    main()
