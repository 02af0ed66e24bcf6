"""The VRAM estimate: torch-free, its breakdown and advice, and within 25% of the bytes a real step
allocates (counted by memory_probe) for tiny SD1/SDXL and full-size SD1.5 shapes on the CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lora_bakery.trainer.memory_estimate import GIB, estimate_training_vram
from lora_bakery.trainer.memory_probe import LiveTensorBytes, measure_training_step

ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_estimate_module_imports_without_torch():
    code = ("import sys; import lora_bakery.trainer.memory_estimate as m; "
            "e = m.estimate_training_vram('sdxl', 1024, 1); print('torch' in sys.modules, round(e.total / 2**30, 1))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "False" and float(out[1]) > 5


def test_live_tensor_bytes_counts_what_is_alive():
    with LiveTensorBytes() as probe:
        a = torch.ones(1024)  # 4 KiB
        b = torch.ones(2048)  # 8 KiB
        view = b[:10]  # a view allocates nothing
        del a
        assert probe.live == 8192 and probe.peak == 12288
        del b, view
    assert probe.live == 0


def test_breakdown_follows_the_savers():
    base = estimate_training_vram("sdxl", 1024, 1, mixed_precision="bf16")
    ckpt = estimate_training_vram("sdxl", 1024, 1, mixed_precision="bf16", gradient_checkpointing=True)
    placed = estimate_training_vram("sdxl", 1024, 1, mixed_precision="bf16", placement=True, cache_text_encoder_outputs=True)
    fp8 = estimate_training_vram("sdxl", 1024, 1, mixed_precision="bf16", placement=True, cache_text_encoder_outputs=True,
                                 fp8_base=True, gradient_checkpointing=True)
    assert ckpt.activations < base.activations / 4 and ckpt.weights == base.weights
    # medvram: only the U-Net is resident (fp16: 2 bytes a parameter); fp8 about halves it
    assert placed.weights == 2 * 2_567_463_684 and base.weights > placed.weights + 1.5 * GIB
    assert 0.49 < fp8.weights / placed.weights < 0.51
    assert base.dominant() == "activations" and base.savers()[0] == "training.gradient_checkpointing on"
    assert fp8.dominant() == "weights" and "training.gradient_checkpointing on" not in fp8.savers()
    placed_ckpt = estimate_training_vram("sdxl", 1024, 1, mixed_precision="bf16", placement=True,
                                         cache_text_encoder_outputs=True, gradient_checkpointing=True)
    assert placed_ckpt.dominant() == "weights" and placed_ckpt.savers()[0] == "training.fp8_base on"
    # twice the batch, about twice the activations; 8-bit AdamW a quarter of AdamW's state
    assert 1.9 < estimate_training_vram("sd1", 512, 4).activations / estimate_training_vram("sd1", 512, 2).activations < 2.1
    assert estimate_training_vram("sd1", 512, optimizer="adamw8bit").optimizer * 4 == estimate_training_vram("sd1", 512).optimizer


def test_fp8_without_checkpointing_counts_the_upcast_copies():
    plain = estimate_training_vram("sd1", 512, 1, mixed_precision="bf16", fp8_base=True)
    ckpt = estimate_training_vram("sd1", 512, 1, mixed_precision="bf16", fp8_base=True, gradient_checkpointing=True)
    assert plain.weight_casts == 2 * 859_077_120 and 0 < ckpt.weight_casts < plain.weight_casts / 8
    assert any("gradient_checkpointing" in n for n in plain.notes)


def test_line_and_advice_name_free_memory_and_config_keys():
    est = estimate_training_vram("sdxl", 1024, 2, mixed_precision="fp16", free_bytes=6 * GIB)
    assert est.fits() is False
    line = est.line()
    assert line.startswith("memory: this bake needs ≈ ") and "6.0 GiB free" in line
    advice = est.advice()
    for key in ("training.gradient_checkpointing", "training.fp8_base", "training.cache_text_encoder_outputs",
                "training.batch_size 1"):
        assert key in advice


def _full_sd15_views():
    from diffusers import UNet2DConditionModel

    from lora_bakery.trainer.tiny import tiny_configs

    config = dict(tiny_configs("sd15").unet, block_out_channels=[320, 640, 1280, 1280], cross_attention_dim=768)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**config).requires_grad_(False).eval()
    return SimpleNamespace(unet=unet, vae=None, text_encoders=[], architecture="sd1",
                           configs=SimpleNamespace(unet=dict(config)))


def _tiny_views(arch):
    from lora_bakery.trainer.loop.checkpoint import load_checkpoint
    from lora_bakery.trainer.models import build_views
    from lora_bakery.trainer.tiny import tiny_checkpoint

    parts = load_checkpoint(tiny_checkpoint(arch))
    return build_views(parts.parameters, parts.architecture)


def _check(views, res, batch, ckpt, tolerance=0.25, fp8=False):
    autocast = torch.bfloat16 if fp8 else None
    measured = measure_training_step(views, resolution=res, batch=batch, gradient_checkpointing=ckpt, autocast_dtype=autocast)
    counts = {"unet_params": sum(p.numel() for p in views.unet.parameters()),
              "unet_linear_conv": sum(m.weight.numel() for m in views.unet.modules()
                                      if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))}
    est = estimate_training_vram(dict(views.unet.config), res, batch, gradient_checkpointing=ckpt,
                                 mixed_precision="bf16" if fp8 else "no", weight_dtype="fp32", fp8_base=fp8,
                                 network_params=measured.trained_parameters, weights_on_device=measured.weights,
                                 counts=counts, device="cpu")
    est_total = est.total - est.adapters + measured.adapters  # adapters: exact count either way
    real = measured.total
    assert abs(est_total / real - 1) <= tolerance, (res, batch, ckpt, est_total, real)
    step = est.activations + est.gradients + est.weight_casts
    assert abs(step / measured.transient - 1) <= tolerance, (res, batch, ckpt, step, measured.transient)


@pytest.mark.parametrize("arch,res,batch,ckpt", [
    ("sd15", 64, 1, False), ("sd15", 128, 2, False), ("sd15", 128, 1, True), ("sdxl", 64, 2, False), ("sdxl", 128, 1, True),
])
def test_estimate_within_25_percent_of_a_measured_tiny_step(arch, res, batch, ckpt):
    _check(_tiny_views(arch), res, batch, ckpt)


@pytest.mark.skipif(not hasattr(torch, "float8_e4m3fn"), reason="torch without float8")
@pytest.mark.parametrize("ckpt", [False, True])
def test_estimate_counts_the_upcast_copies_of_fp8_weights(ckpt):
    """fp8_base: autocast's bf16 copy of each fp8 weight is saved for backward unless checkpointing."""
    from lora_bakery.trainer.fp8 import FP8

    views = _tiny_views("sd15")
    for module in views.unet.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.weight.data = module.weight.data.to(FP8)
    _check(views, 128, 2, ckpt, fp8=True)


def _available_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


@pytest.mark.slow
@pytest.mark.skipif(_available_gib() < 8, reason="needs ~6 GiB of free RAM for full-size SD1.5 in fp32")
def test_estimate_within_25_percent_of_a_measured_full_size_sd15_step():
    views = _full_sd15_views()
    _check(views, 64, 1, False)
    _check(views, 128, 1, True)
