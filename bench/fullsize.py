"""Full-size SD1.5 / SDXL checkpoints with random weights, and small captioned datasets, for benchmarks.

No real weights can be downloaded here, and speed does not depend on the values, only on shapes
and on the values staying finite: every tensor of a real single-file checkpoint (LDM/SGM keys,
published shapes) is drawn at a scale that keeps activations O(1) (norm weights near 1, matrices
~ N(0, 1/fan_in)). In particular SD1.5's ``zero_module`` output layers are random too, so the
U-Net's output is not exactly 0 and a LoRA really learns (a fresh diffusers init would train nothing).

Shapes come from the published configs: SD1.5 (``runwayml/stable-diffusion-v1-5``) and SDXL base 1.0
(``stabilityai/stable-diffusion-xl-base-1.0``), written through the project's own key layout
(``checkpoint_shapes``), so kohya's loaders and ours read the same file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def full_configs(arch: str) -> Any:
    """``ModelConfigs`` with the published SD1.5 or SDXL shapes (``arch``: ``"sd15"`` or ``"sdxl"``)."""
    from lora_bakery.trainer.tiny import tiny_configs

    configs = tiny_configs(arch)
    clip_l = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
                  projection_dim=768, hidden_act="quick_gelu")
    configs.vae.update(block_out_channels=[128, 256, 512, 512])
    if arch == "sd15":
        configs.unet.update(block_out_channels=[320, 640, 1280, 1280], cross_attention_dim=768)
        configs.text_encoders[0].update(clip_l)
        return configs
    if arch == "sdxl":
        configs.unet.update(block_out_channels=[320, 640, 1280], cross_attention_dim=2048, attention_head_dim=[5, 10, 20],
                            transformer_layers_per_block=[1, 2, 10], addition_time_embed_dim=256,
                            projection_class_embeddings_input_dim=2816)
        configs.text_encoders[0].update(clip_l)
        configs.text_encoders[1].update(vocab_size=49408, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                        num_attention_heads=20, bos_token_id=49406, eos_token_id=49407, pad_token_id=1,
                                        projection_dim=1280, hidden_act="gelu")
        return configs
    raise ValueError(f"unknown architecture {arch!r}: sd15 or sdxl")


def random_tensor(key: str, shape: tuple[int, ...], generator: Any, device: str) -> Any:
    """One checkpoint tensor at a scale that keeps activations O(1) (see the module docstring)."""
    import torch

    noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    if len(shape) == 1:
        return noise.mul_(0.1).add_(1.0) if key.endswith("weight") else noise.mul_(0.1)
    if "embedding" in key:
        return noise.mul_(0.1)
    fan_in = shape[0] if key.endswith("text_projection") else math.prod(shape[1:])
    return noise.mul_(fan_in**-0.5)


def make_checkpoint(arch: str, path: Path, *, dtype: str = "float16", device: str = "cpu", seed: int = 0) -> Path:
    """Write a random full-size single-file checkpoint (``.safetensors``) unless ``path`` exists.

    Args:
        arch (`str`): ``"sd15"`` or ``"sdxl"``.
        path (`Path`): where to write it.
        dtype (`str`): ``"float16"``, ``"bfloat16"`` or ``"float32"``: what the host will hold.
        device (`str`): where to draw the numbers (``"cuda"`` is much faster for SDXL's 3.5 B values).
        seed (`int`): the values' seed.
    """
    import torch
    from safetensors.torch import save_file

    from lora_bakery.trainer.models import checkpoint_shapes

    if path.is_file():
        return path
    generator = torch.Generator(device=device).manual_seed(seed)
    want = getattr(torch, dtype)
    tensors = {key: random_tensor(key, shape, generator, device).to(want).cpu()
               for key, shape in checkpoint_shapes(full_configs(arch)).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    save_file(tensors, str(tmp))
    tmp.replace(path)
    return path


def make_dataset(root: Path, *, count: int, size: int, repeats: int, seed: int = 0) -> Path:
    """``root/<repeats>_subject/`` with ``count`` random-noise PNGs of ``size``² and one caption each.

    Returns the concept folder (kohya's ``image_dir``); ``root`` is our ``train_data_dir``.
    """
    import numpy as np
    from PIL import Image

    folder = root / f"{repeats}_subject"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        image = folder / f"img{i:03d}.png"
        if not image.is_file():
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(image)
            (folder / f"img{i:03d}.txt").write_text("sks, 1girl, solo, smile, outdoors, blue sky", encoding="utf-8")
    return folder
