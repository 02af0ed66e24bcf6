"""Measure one LoRA training step's memory and compare it with ``memory_estimate``.

On the CPU the bytes come from ``memory_probe.LiveTensorBytes`` (exact live-storage counting); with
``--device cuda`` from ``torch.cuda.max_memory_allocated`` over the same step. Each case prints the
estimate, the measurement and their ratio; ``--json`` writes the rows (the coefficients in
``memory_estimate`` were fitted to such rows).

    python bench/vram_calibrate.py --cases tiny                # tiny SD1/SDXL, 64-128 px (seconds)
    python bench/vram_calibrate.py --cases sd15 --res 64 128   # full-size SD1.5 shapes, random weights (CPU: minutes)
    python bench/vram_calibrate.py --device cuda --cases sd15 sdxl --res 512 1024 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def views_for(case: str, device: str, dtype: Any) -> Any:
    """Tiny views from the tiny checkpoints, or a bare full-size U-Net (random weights) for sd15/sdxl."""
    import torch

    if case.startswith("tiny"):
        from lora_bakery.trainer.loop.checkpoint import load_checkpoint
        from lora_bakery.trainer.models import build_views
        from lora_bakery.trainer.tiny import tiny_checkpoint

        parts = load_checkpoint(tiny_checkpoint("sdxl" if case == "tiny-sdxl" else "sd15"))
        for tensor in parts.parameters.values():
            tensor.data = tensor.data.to(device, dtype)
        return build_views(parts.parameters, parts.architecture)
    from diffusers import UNet2DConditionModel

    from bench.fullsize import full_configs

    configs = full_configs(case)
    torch.manual_seed(0)
    with torch.device(device):
        unet = UNet2DConditionModel(**configs.unet).to(dtype)
    unet.requires_grad_(False).eval()
    return SimpleNamespace(unet=unet, vae=None, text_encoders=[], architecture="sdxl" if case == "sdxl" else "sd1",
                           configs=SimpleNamespace(unet=dict(configs.unet)))


def _counts(unet: Any) -> dict[str, int]:
    import torch

    return {"unet_params": sum(p.numel() for p in unet.parameters()),
            "unet_linear_conv": sum(m.weight.numel() for m in unet.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))}


def run_case(case: str, res: int, batch: int, ckpt: bool, precision: str, device: str, fp8: bool) -> dict[str, Any]:
    import torch

    from lora_bakery.trainer.memory_estimate import estimate_training_vram
    from lora_bakery.trainer.memory_probe import measure_training_step
    from lora_bakery.trainer.memory_shapes import unet_terms

    weight_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    autocast = None if precision == "fp32" else weight_dtype
    views = views_for(case, device, torch.float32 if fp8 else weight_dtype)
    for module in views.unet.modules():  # as CUDA autocast runs them: norms in fp32
        if isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            module.float()
    if fp8:
        for m in views.unet.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.data = m.weight.data.to(torch.float8_e4m3fn)
    started = time.perf_counter()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    m = measure_training_step(views, resolution=res, batch=batch, gradient_checkpointing=ckpt, autocast_dtype=autocast)
    measured = m.transient + m.optimizer + m.adapters  # what the bake adds to the resident weights
    if device == "cuda":
        measured = torch.cuda.max_memory_allocated() - base
    est = estimate_training_vram(
        views.unet.config, res, batch, gradient_checkpointing=ckpt, mixed_precision=precision,
        weight_dtype="fp32" if fp8 else precision, fp8_base=fp8, network_params=m.trained_parameters,
        weights_on_device=0, device=device, counts=_counts(views.unet))
    predicted = est.activations + est.gradients + est.optimizer + est.weight_casts + est.adapters
    terms = unet_terms(dict(views.unet.config), res // 8, res // 8)
    return {"terms": [terms.resnet, terms.resnet_in, terms.transformer, terms.transformer_in, terms.context,
                      terms.largest_resnet, terms.largest_layer],"case": case, "res": res, "batch": batch, "ckpt": ckpt, "precision": precision, "fp8": fp8,
            "measured": measured, "estimate": predicted, "ratio": round(predicted / measured, 3),
            "transient": m.transient, "optimizer": m.optimizer, "trained": m.trained_parameters,
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=["tiny"], help="tiny (= tiny-sd15 tiny-sdxl), tiny-sd15, tiny-sdxl, sd15, sdxl")
    parser.add_argument("--res", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--ckpt", nargs="+", choices=["off", "on"], default=["off", "on"])
    parser.add_argument("--precision", nargs="+", choices=["fp32", "bf16", "fp16"], default=["fp32"])
    parser.add_argument("--fp8", action="store_true", help="U-Net Linear/Conv weights in float8 (needs bf16/fp16)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cases = [c for name in args.cases for c in (["tiny-sd15", "tiny-sdxl"] if name == "tiny" else [name])]
    rows = []
    for case in cases:
        for precision in args.precision:
            for res in args.res:
                for batch in args.batch:
                    for ckpt in args.ckpt:
                        row = run_case(case, res, batch, ckpt == "on", precision, args.device, args.fp8)
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        if args.json:
                            args.json.write_text(json.dumps(rows, indent=1))
    worst = max(abs(r["ratio"] - 1) for r in rows)
    print(f"vram estimate: {len(rows)} cases, worst |estimate/measured - 1| = {worst:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
