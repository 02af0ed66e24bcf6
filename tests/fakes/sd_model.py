"""A fake ``shared.sd_model`` with the *live* A1111 structure and real tensors from a checkpoint.

The tensors of a (tiny) single-file checkpoint become ``nn.Parameter``s under the names a hijacked
A1111 1.10.1 model has (reference/a1111-live-sd15.md; SDXL per ``sd_hijack.hijack`` of 1.10.1):

- SD1: ``cond_stage_model.wrapped.transformer.text_model...`` (``FrozenCLIPEmbedderWithCustomWords``
  around ldm's ``FrozenCLIPEmbedder``), token embedding ``...token_embedding.wrapped.weight``
  (``EmbeddingsWithFixes``); SD2 the same with ``cond_stage_model.wrapped.model...``.
- SDXL: ``conditioner.embedders.0.wrapped.transformer...`` and ``conditioner.embedders.1.wrapped.model...``
  (OpenCLIP, ``model.token_embedding.wrapped.weight``); ``cond_stage_model`` is the conditioner again,
  registered after it, as the hijack assigns it.
- ``model.diffusion_model.*`` (UNet) has ``requires_grad=True``; text encoders and VAE ``False``.
- Root keys (``alphas_cumprod``...) and ``position_ids`` are buffers, not parameters.

Layers are plain containers holding ``weight``/``bias`` (no forward): the fake ``process_images``
never runs them, it only merges LoRA deltas into them as the Lora extension does.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from .a1111 import sd_hijack, sd_hijack_clip, sd_models

UNET_PREFIX = "model.diffusion_model."


class Node(torch.nn.Module):
    """A container module (ldm blocks, CLIP layers...)."""


class FakeAutoencoder(Node):
    """``first_stage_model``: ldm calls its ``encode``/``decode`` (which ``lowvram`` wraps), not ``forward``."""

    def encode(self, x):
        return x

    def decode(self, z):
        return z


class FakeSDModel(torch.nn.Module):
    """Stands in for ldm ``LatentDiffusion`` / sgm ``DiffusionEngine`` after A1111 loaded it."""


def is_buffer(key: str, tensor: torch.Tensor) -> bool:
    """Checkpoint entries that are buffers in the live model, not parameters."""
    return "." not in key or key.endswith("position_ids") or not tensor.is_floating_point()


def live_name(key: str, arch: str) -> str:
    """The live (hijacked) parameter name of a checkpoint key."""
    if arch == "sdxl" and key.startswith("conditioner.embedders."):
        parts = key.split(".")
        key = ".".join(parts[:3] + ["wrapped"] + parts[3:])
    elif key.startswith("cond_stage_model."):
        key = "cond_stage_model.wrapped." + key[len("cond_stage_model.") :]
    if key.endswith("token_embedding.weight"):
        key = key[: -len("weight")] + "wrapped.weight"
    return key


def _child(parent: torch.nn.Module, name: str, next_name: str | None) -> torch.nn.Module:
    child = parent._modules.get(name)
    if child is None:
        if name == "token_embedding" and next_name == "wrapped":
            child = sd_hijack.EmbeddingsWithFixes(Node())
            parent.add_module(name, child)
            return child
        child = Node()
        parent.add_module(name, child)
    return child


def _skeleton(arch: str, tokenizer_dirs: list[Path]) -> FakeSDModel:
    from transformers import CLIPTokenizer

    root = FakeSDModel()
    root.add_module("model", Node())
    toks = [CLIPTokenizer.from_pretrained(str(d), local_files_only=True) for d in tokenizer_dirs]
    if arch == "sdxl":
        clip_l, open_clip = Node(), Node()
        clip_l.tokenizer = toks[0]  # ldm FrozenCLIPEmbedder has .tokenizer; open_clip's embedder has none
        embedders = torch.nn.ModuleList([
            sd_hijack_clip.FrozenCLIPEmbedderForSDXLWithCustomWords(clip_l),
            sd_hijack_clip.FrozenOpenCLIPEmbedder2WithCustomWords(open_clip),
            Node(), Node(), Node(),  # size/crop embedders: no parameters
        ])
        root.add_module("conditioner", Node())
        root.conditioner.add_module("embedders", embedders)
    else:
        wrapped = Node()
        wrapped.tokenizer = toks[0]
        root.add_module("cond_stage_model", sd_hijack_clip.FrozenCLIPEmbedderWithCustomWords(wrapped))
    root.add_module("first_stage_model", FakeAutoencoder())
    return root


def build_fake_sd_model(checkpoint: str | Path, arch: str, *, parameterization: str = "eps", sha256: str | None = None,
                        legacy_hash: str | None = None) -> FakeSDModel:
    """Load ``checkpoint`` into a live-structured fake model.

    Args:
        checkpoint (`str` or `Path`): single-file checkpoint (tokenizer folders beside it).
        arch (`str`): ``"sd1"``, ``"sd2"`` or ``"sdxl"``.
        parameterization (`str`, defaults to ``"eps"``): ``"v"`` for v-prediction models.
        sha256 / legacy_hash (`str`, *optional*): what ``sd_checkpoint_info`` reports.

    Returns:
        `FakeSDModel`: with ``is_sd1/is_sd2/is_sdxl``, ``sd_checkpoint_info`` and the live names.
    """
    checkpoint = Path(checkpoint)
    dirs = [checkpoint.parent / "tokenizer"]
    root = _skeleton(arch, dirs)
    for key, tensor in load_file(str(checkpoint)).items():
        name = live_name(key, arch)
        *path, leaf = name.split(".")
        module = root
        for i, part in enumerate(path):
            module = _child(module, part, path[i + 1] if i + 1 < len(path) else leaf)
        if is_buffer(key, tensor):
            module.register_buffer(leaf, tensor)
        else:
            module.register_parameter(leaf, torch.nn.Parameter(tensor, requires_grad=key.startswith(UNET_PREFIX)))
    if arch == "sdxl":
        root.cond_stage_model = root.conditioner  # sd_hijack: conditioner with several text models
    root.is_sdxl, root.is_sd2, root.is_sd1 = arch == "sdxl", arch == "sd2", arch == "sd1"
    root.is_sd3 = root.is_ssd = False
    root.lowvram = False
    root.latent_channels = 4
    root.parameterization = parameterization
    root.sd_checkpoint_info = sd_models.CheckpointInfo(str(checkpoint), sha256=sha256, legacy_hash=legacy_hash)
    root.sd_model_checkpoint = str(checkpoint)
    root.sd_model_hash = sha256[:10] if sha256 else None
    return root
