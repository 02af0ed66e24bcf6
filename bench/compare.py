"""Benchmark: Compare grids vs calling ``Host.generate`` directly, and block-norm analysis time.

1. Grid overhead: the same cells (epochs × weights on the tiny SD1.5 model, fixed seed) rendered by
   ``run_grid`` (planning, batching, saving each cell, drawing the labelled grid) and by plain
   ``host.generate`` calls, one request per cell. Goal: grid time ≤ 1.05 × direct time.
2. Block norms: per-block ‖ΔW‖ of 8 epochs of a full-size SD1.5-shaped LoCon (dim 32, conv 16, fp16
   files built from shapes on the meta device: no checkpoint needed). Goal: < 10 s on CPU.

    .venvs/standalone/bin/python bench/compare.py [--cells-steps 4] [--skip-norms]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bench_grid(steps: int, size: int) -> dict:
    from lora_bakery.extension.compare import Axis, GridSpec, plan_cells, plan_requests, run_grid
    from lora_bakery.extension.compare.synthetic import make_epoch_files
    from lora_bakery.extension.host.base import GenerationRequest, LoraSpec
    from lora_bakery.extension.host.diffusers_host import DiffusersHost
    from lora_bakery.trainer.tiny import tiny_checkpoint

    host = DiffusersHost(tiny_checkpoint("sd15"), device="cpu")
    tmp = Path(tempfile.mkdtemp(prefix="bakery-bench-compare-"))
    files = make_epoch_files(host.views(), tmp / "run", name="bench", epochs=3, kind="locon")
    spec = GridSpec(prompt="a photo of a cat", seed=7, width=size, height=size, steps=steps,
                    x=Axis("epoch", [str(f) for f in files]), y=Axis("weight", [0.5, 1.0]))
    cells = plan_cells(spec)
    direct_reqs = [GenerationRequest(prompt=c.prompt, seed=c.seed, width=size, height=size, steps=steps,
                                     cfg_scale=c.cfg_scale, loras=[LoraSpec(c.lora, te=c.te)]) for c in cells]
    host.generate(direct_reqs[:1])  # warm-up: pipelines, first LoRA build
    rounds = {"direct": [], "grid": []}
    for _ in range(2):
        start = time.perf_counter()
        for req in direct_reqs:
            host.generate([req])
        rounds["direct"].append(time.perf_counter() - start)
        start = time.perf_counter()
        run_grid(host, spec, tmp / "grid")
        rounds["grid"].append(time.perf_counter() - start)
    direct, grid = min(rounds["direct"]), min(rounds["grid"])
    return {"cells": len(cells), "requests": len(plan_requests(spec, cells)), "direct_s": direct, "grid_s": grid,
            "direct_cells_per_s": len(cells) / direct, "grid_cells_per_s": len(cells) / grid, "ratio": grid / direct}


def full_sd15_locon_files(folder: Path, epochs: int = 8) -> list[Path]:
    """8 fp16 LoCon files (dim 32/alpha 16, conv 16/8) with every layer of a full-size SD1.5 LoCon."""
    import torch

    from lora_bakery.extension.compare.synthetic import randomize_network
    from lora_bakery.trainer.adapters import create_network, make_options
    from lora_bakery.trainer.models import build_views, checkpoint_shapes
    from lora_bakery.trainer.saving import base_model_metadata, save_network
    from lora_bakery.trainer.tiny import tiny_configs

    configs = tiny_configs("sd15")
    configs.unet.update(block_out_channels=[320, 640, 1280, 1280], cross_attention_dim=768)
    configs.vae.update(block_out_channels=[128, 256, 512, 512])
    configs.text_encoders[0].update(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                    num_attention_heads=12, projection_dim=768)
    meta_tensors = {k: torch.empty(s, device="meta") for k, s in checkpoint_shapes(configs).items()}
    views = build_views(meta_tensors, "sd1")
    network = create_network(views, "locon", make_options("locon", dim=32, alpha=16.0, conv_dim=16, conv_alpha=8.0))
    network = network.to_empty(device="cpu")
    paths = []
    for epoch in range(1, epochs + 1):
        randomize_network(network, seed=epoch)
        name = f"full-{epoch:06d}.safetensors" if epoch < epochs else "full.safetensors"
        paths.append(save_network(folder / name, network.kohya_state_dict(), base_model_metadata("sd1"),
                                  precision="fp16", overwrite=True))
    return paths


def bench_norms() -> dict:
    from lora_bakery.extension.compare import block_norms, plot_block_norms

    tmp = Path(tempfile.mkdtemp(prefix="bakery-bench-norms-"))
    start = time.perf_counter()
    files = full_sd15_locon_files(tmp)
    build = time.perf_counter() - start
    start = time.perf_counter()
    norms = block_norms(files)
    analysis = time.perf_counter() - start
    start = time.perf_counter()
    plot_block_norms(norms, tmp / "norms.png")
    plot = time.perf_counter() - start
    size = sum(f.stat().st_size for f in files)
    return {"files": len(files), "mb_per_file": size / len(files) / 2**20, "build_s": build, "analysis_s": analysis,
            "plot_s": plot, "blocks": len(norms.blocks)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells-steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--skip-grid", action="store_true")
    parser.add_argument("--skip-norms", action="store_true")
    args = parser.parse_args()
    if not args.skip_grid:
        g = bench_grid(args.cells_steps, args.size)
        print(f"grid: {g['cells']} cells in {g['requests']} requests | direct {g['direct_s']:.2f} s "
              f"({g['direct_cells_per_s']:.2f} cells/s) | run_grid {g['grid_s']:.2f} s "
              f"({g['grid_cells_per_s']:.2f} cells/s) | ratio {g['ratio']:.3f} (goal <= 1.05)")
    if not args.skip_norms:
        n = bench_norms()
        print(f"block norms: {n['files']} epochs of a full-size SD1.5 LoCon ({n['mb_per_file']:.0f} MB each, "
              f"{n['blocks']} blocks) in {n['analysis_s']:.2f} s (goal < 10 s); plot {n['plot_s']:.2f} s; "
              f"files built in {n['build_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
