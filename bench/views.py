"""Benchmark: zero-copy training views vs. loading the same checkpoint a second time with diffusers.

The host (A1111, or DiffusersHost) already holds the weights. To train, LoRA Bakery builds
diffusers/transformers modules around those tensors; the usual alternative is a second load of
the checkpoint with diffusers (read the file again, convert the keys, build the modules). Each
way runs in its own fresh process after the same "host load", so peak RSS is comparable.

    .venvs/standalone/bin/python bench/views.py            # tiny SD1.5 + full-size SD1.5 (fp16, ~2 GB temp file)
    .venvs/standalone/bin/python bench/views.py --tiny-only

Prints one table: time and peak-RSS growth of each way, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _rss_peak_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _rss_now_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def make_full_sd15(path: Path) -> Path:
    """A random fp16 checkpoint with every key and shape of a real SD1.5 file (LDM layout)."""
    import torch
    from safetensors.torch import save_file

    from lora_bakery.trainer.models import checkpoint_shapes
    from lora_bakery.trainer.tiny import tiny_configs

    configs = tiny_configs("sd15")
    configs.unet.update(block_out_channels=[320, 640, 1280, 1280], cross_attention_dim=768)
    configs.vae.update(block_out_channels=[128, 256, 512, 512])
    configs.text_encoders[0].update(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                    num_attention_heads=12, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
                                    projection_dim=768)
    gen = torch.Generator().manual_seed(0)
    tensors = {}
    for key, shape in checkpoint_shapes(configs).items():
        tensors[key] = (torch.randn(shape, generator=gen) * 0.02).to(torch.float16)
    save_file(tensors, str(path))
    return path


def measure(mode: str, ckpt: str) -> dict:
    """Run in a child process: host load, then one way of getting trainable modules."""
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    # Import everything either way needs first: import time is not what is compared.
    import accelerate  # noqa: F401
    from diffusers import AutoencoderKL, UNet2DConditionModel  # noqa: F401
    from diffusers.loaders import single_file_utils  # noqa: F401
    from transformers import CLIPTextModel  # noqa: F401

    import lora_bakery.trainer.models  # noqa: F401

    # What the webui already holds: weights resident in memory (clone: safetensors maps the file lazily).
    host = {k: v.clone() for k, v in load_file(ckpt).items()}
    base_peak, base_now = _rss_peak_bytes(), _rss_now_bytes()
    start = time.perf_counter()
    if mode == "views":
        from lora_bakery.trainer.models import build_views

        views = build_views(host)
        modules = [views.unet, views.vae, *views.text_encoders]
        extra = {"shared": f"{views.report.shared}/{views.report.total}"}
    else:
        modules = _diffusers_second_load(ckpt, host)
        extra = {}
    built = time.perf_counter() - start
    # Training reads every weight: touch them so lazily mapped file pages count in both ways.
    checksum = sum(float(p.detach().sum()) for m in modules for p in m.parameters())
    seconds = time.perf_counter() - start
    params = sum(p.numel() for m in modules for p in m.parameters())
    extra["checksum_finite"] = checksum == checksum
    return {"mode": mode, "seconds": seconds, "built": built, "params": params,
            "rss_growth": max(_rss_peak_bytes() - base_peak, _rss_now_bytes() - base_now, 0), **extra}


def _diffusers_second_load(ckpt: str, host: dict) -> list:
    """What ``from_single_file`` does: read the file again, convert keys, build modules, load."""
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu
    from safetensors.torch import load_file
    from transformers import CLIPTextConfig, CLIPTextModel

    from lora_bakery.trainer.models import infer_configs

    state = load_file(ckpt)  # the second copy
    configs = infer_configs(host)  # configs are not what is measured; reuse ours
    unet_sd = sfu.convert_ldm_unet_checkpoint(state, configs.unet)
    vae_sd = sfu.convert_ldm_vae_checkpoint(state, configs.vae)
    clip_sd = sfu.convert_ldm_clip_checkpoint(state)
    with init_empty_weights():
        unet = UNet2DConditionModel(**configs.unet)
        vae = AutoencoderKL(**configs.vae)
        clip = CLIPTextModel(CLIPTextConfig(**configs.text_encoders[0]))
    unet.load_state_dict(unet_sd, assign=True)
    vae.load_state_dict(vae_sd, assign=True)
    clip_sd = {k: v for k, v in clip_sd.items() if not k.endswith("position_ids")}
    clip.load_state_dict(clip_sd, assign=True, strict=False)
    return [unet, vae, clip]


def _child(mode: str, ckpt: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(ckpt)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="runs per way (best time, max RSS)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1])))
        return
    from lora_bakery.trainer.tiny import tiny_checkpoint

    cases = [("tiny SD1.5 (fp32)", tiny_checkpoint("sd15"))]
    tmp = tempfile.TemporaryDirectory()
    if not args.tiny_only:
        print("writing a full-size random SD1.5 checkpoint (fp16) ...", flush=True)
        cases.append(("full-size SD1.5 (fp16)", make_full_sd15(Path(tmp.name) / "sd15-random.safetensors")))
    header = f"{'model':<24}{'file MiB':>10}{'build s: views':>16}{'diffusers':>11}{'ratio':>8}" \
             f"{'ready s: views':>16}{'diffusers':>11}{'ratio':>8}{'+MiB: views':>13}{'diffusers':>11}{'shared':>11}"
    rows = []
    for name, ckpt in cases:
        runs = {m: [_child(m, ckpt) for _ in range(args.repeat)] for m in ("views", "diffusers")}
        v_b = min(r["built"] for r in runs["views"])
        d_b = min(r["built"] for r in runs["diffusers"])
        v_s = min(r["seconds"] for r in runs["views"])
        d_s = min(r["seconds"] for r in runs["diffusers"])
        v_m = max(r["rss_growth"] for r in runs["views"])
        d_m = max(r["rss_growth"] for r in runs["diffusers"])
        rows.append(f"{name:<24}{_mib(ckpt.stat().st_size):>10}{v_b:>16.3f}{d_b:>11.3f}{d_b / v_b:>7.1f}x"
                    f"{v_s:>16.3f}{d_s:>11.3f}{d_s / v_s:>7.1f}x{_mib(v_m):>13}{_mib(d_m):>11}"
                    f"{runs['views'][0]['shared']:>11}")
    print()
    print(header)
    for row in rows:
        print(row)
    print("\nbuild = until the trainable modules exist; ready = after every weight was read once (training"
          " reads them all); ratio = diffusers second load / views; +MiB = peak RSS growth after the host's own load.")
    tmp.cleanup()


if __name__ == "__main__":
    main()
