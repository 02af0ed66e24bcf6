"""How much device memory a bake needs, before it starts: weights, adapters, gradients, optimizer
state and activations, with the saver to turn on when it will not fit. No torch (the Bake tab's
summary calls it before anything is loaded).

Weights are what must be resident: with a host placement (A1111 --medvram/--lowvram) only the U-Net,
plus the text encoders when their outputs cannot be cached and the VAE when latents are encoded
every step; without one, the host keeps everything on the device. ``fp8_base`` stores the U-Net's
Linear/Conv weights in one byte each — but autocast's upcast copy of each such weight is saved for
backward, so without gradient checkpointing a bf16/fp16 copy of all of them is alive at the peak
(``weight_casts``; checkpointing keeps one block's worth).

Activations are ``coefficient x elements x batch``, elements counted from the U-Net config
(:mod:`.memory_shapes`: ResNet and transformer-layer channel x pixel sums). The coefficients are
bytes per counted element, fitted by MEASUREMENT of real training steps (``memory_probe``, which
counts every live tensor storage; ``bench/vram_calibrate.py`` reruns it): tiny SD1/SDXL and
full-size SD1.5 shapes at 64-128 px, batch 1-2, fp32 and bf16 autocast on the CPU, where torch runs
the same flash-attention kernels as CUDA (no pixels^2 attention maps). CUDA half precision keeps
norm outputs in fp32 (autocast), which the bf16 coefficients include only as far as the CPU's
autocast lists do: the GPU bench compares with ``torch.cuda.max_memory_allocated`` (:func:`compare`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .memory_shapes import text_terms, unet_terms

GIB = 2**30

#: Published model shapes (SD1.5 ``runwayml/stable-diffusion-v1-5``, SDXL base 1.0) and parameter counts.
ARCHS: dict[str, dict[str, Any]] = {
    "sd1": {
        "unet": {"block_out_channels": [320, 640, 1280, 1280], "layers_per_block": 2, "transformer_layers_per_block": 1,
                 "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]},
        "text": [{"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072}],
        "unet_params": 859_520_964, "unet_linear_conv": 859_077_120, "text_params": 123_060_480,
        "vae_params": 83_653_863, "lora_unet_per_rank": 423_936, "lora_text_per_rank": 165_888,
    },
    "sdxl": {
        "unet": {"block_out_channels": [320, 640, 1280], "layers_per_block": 2, "transformer_layers_per_block": [1, 2, 10],
                 "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"]},
        "text": [{"num_hidden_layers": 12, "hidden_size": 768, "intermediate_size": 3072},
                 {"num_hidden_layers": 32, "hidden_size": 1280, "intermediate_size": 5120}],
        "unet_params": 2_567_463_684, "unet_linear_conv": 2_565_880_320, "text_params": 817_720_320,
        "vae_params": 83_653_863, "lora_unet_per_rank": 2_659_840, "lora_text_per_rank": 903_168,
    },
}
ARCHS["sd15"] = ARCHS["sd1"]

_BYTES = {"fp32": 4, "no": 4, "float": 4, "fp16": 2, "bf16": 2, "fp8": 1}

#: Bytes per counted element (see :class:`~.memory_shapes.Terms`), "full" = fp32, "half" = fp16/bf16
#: autocast over half-precision weights (norms run in fp32 there). Without checkpointing a ResNet
#: keeps ~2.5 fp32 values per (in + out) x pixel and a transformer layer ~24 per channel x pixel
#: (measured per block), ``scale`` covers what the whole U-Net adds (skips, up/down samplers,
#: backward buffers); with checkpointing each unit keeps its input, the transformer modules their
#: norm/projection tensors, and backward recomputes one unit at a time.
COEFFICIENTS: dict[str, dict[str, float]] = {
    "full": {"resnet": 10.0, "layer": 95.0, "context": 8.4, "scale": 1.33,
             "ckpt_resnet_in": 4.0, "ckpt_layer_in": 4.0, "ckpt_module": 16.0},
    "half": {"resnet": 8.0, "layer": 50.0, "context": 4.2, "scale": 1.33,
             "ckpt_resnet_in": 2.0, "ckpt_layer_in": 2.0, "ckpt_module": 10.0},
}
#: Weight gradients are allocated while backward frees activations: at the peak about this share of
#: them is alive on top of the activations, and never less than all of them plus this margin.
GRAD_SHARE = 0.25
GRAD_FLOOR = 1.1
#: Text-encoder layers trained: bytes per counted element (tokens x (hidden + intermediate)).
TEXT_COEFFICIENT = {"full": 16.0, "half": 10.0}
#: Optimizer state in bytes per trained parameter (AdamW: two fp32 moments; 8-bit: two bytes).
OPTIMIZER_BYTES = {"adamw": 8, "adamw8bit": 2, "lion": 4, "prodigy": 16, "dadaptadam": 12}
#: Share of the U-Net's Linear/Conv weights whose autocast copies are alive at once with checkpointing:
#: projections, up/down samplers and time embedding stay outside the units, plus the unit being
#: recomputed (measured 0.11 on the tiny U-Net; counted 0.11 for SD1.5's layer sizes).
CHECKPOINTED_CAST_SHARE = 0.11
#: What max_memory_allocated does not see but a GPU needs: allocator slack and cuBLAS workspace.
CUDA_SLACK = 0.05
CUDA_WORKSPACE = 256 * 2**20


@dataclass
class VramEstimate:
    """Bytes a bake needs on its device, by what needs them.

    Attributes:
        weights (`int`): model weights that must be on the device.
        adapters (`int`): the adapters' fp32 weights.
        gradients (`int`): fp32 gradients of the trained parameters.
        optimizer (`int`): optimizer state.
        activations (`int`): what one step keeps for backward and its transients.
        weight_casts (`int`): autocast's copies of fp8 (fp8_base) or fp32 weights saved for backward.
        overhead (`int`): allocator slack and workspace (GPU only).
        free (`int`, *optional*): free memory on the device when known.
        in_place (`int`): bytes of the estimate already allocated when ``free`` was read (the weights
            and adapters when the run measures after placing them).
        notes (`list[str]`): what the numbers assume.
        settings (`dict`): the savers' current values, for :meth:`savers`.
    """

    weights: int = 0
    adapters: int = 0
    gradients: int = 0
    optimizer: int = 0
    activations: int = 0
    weight_casts: int = 0
    overhead: int = 0
    free: int | None = None
    in_place: int = 0
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return (self.weights + self.adapters + self.gradients + self.optimizer + self.activations
                + self.weight_casts + self.overhead)

    def parts(self) -> dict[str, int]:
        """The non-zero parts, largest first."""
        items = {"weights": self.weights, "activations": self.activations + self.weight_casts,
                 "optimizer": self.optimizer, "gradients": self.gradients, "adapters": self.adapters,
                 "overhead": self.overhead}
        return dict(sorted(((k, v) for k, v in items.items() if v), key=lambda kv: -kv[1]))

    def dominant(self) -> str:
        """The largest part: ``"weights"``, ``"activations"``, ``"optimizer"``..."""
        parts = self.parts()
        return next(iter(parts), "weights")

    def fits(self) -> bool | None:
        """Whether it fits in the free memory (``None`` when that is unknown)."""
        return None if self.free is None else self.total - self.in_place <= self.free

    def line(self) -> str:
        """``needs ≈ X GiB (weights a, activations b, ...), Y GiB free`` for the log."""
        parts = ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.parts().items())
        free = ""
        if self.free is not None:
            still = f"{(self.total - self.in_place) / GIB:.1f} GiB more, " if self.in_place else ""
            free = f"; {still}{self.free / GIB:.1f} GiB free"
        return f"memory: this bake needs ≈ {self.total / GIB:.1f} GiB ({parts}){free}"

    def savers(self) -> list[str]:
        """What to turn on or lower, most effective first for what dominates (config key / Bake form label)."""
        s = self.settings
        tips = {
            "activations": [] if s.get("gradient_checkpointing") else ["training.gradient_checkpointing on"],
            "weights": [] if s.get("fp8_base") else ["training.fp8_base on"],
            "optimizer": ["optimizer.type adamw8bit"] if s.get("optimizer") == "adamw" else [],
        }
        text = [] if s.get("cache_text_encoder_outputs") or s.get("train_text_encoder") else \
            ["training.cache_text_encoder_outputs on"]
        general = [f"training.batch_size {max(1, s.get('batch', 1) // 2)}" if s.get("batch", 1) > 1 else "",
                   "a lower resolution (dataset resolution)"]
        order = tips.get(self.dominant(), []) + tips["activations"] + tips["weights"] + text + tips["optimizer"] + general
        seen: list[str] = []
        for tip in order:
            if tip and tip not in seen:
                seen.append(tip)
        return seen

    def advice(self) -> str:
        """One sentence naming the savers (config keys = Bake form labels)."""
        return (f"{self.dominant()} take the most ({self.parts().get(self.dominant(), 0) / GIB:.1f} GiB); "
                f"try: {'; '.join(self.savers())}.")


def _half(mixed_precision: str) -> str:
    return "half" if mixed_precision in ("fp16", "bf16") else "full"


def activation_bytes(unet_config: dict[str, Any], resolution: Any, batch: int, *, gradient_checkpointing: bool,
                     mixed_precision: str, tokens: int = 77) -> int:
    """Activation bytes one U-Net training step keeps for backward (see the module docstring)."""
    width, height = (resolution, resolution) if isinstance(resolution, int) else resolution
    terms = unet_terms(unet_config, max(1, height // 8), max(1, width // 8), tokens)
    c = COEFFICIENTS[_half(mixed_precision)]
    unit = max(c["resnet"] * terms.largest_resnet, c["layer"] * terms.largest_layer)
    if gradient_checkpointing:
        kept = (c["ckpt_resnet_in"] * terms.resnet_in + c["ckpt_layer_in"] * terms.transformer
                + c["ckpt_module"] * terms.transformer_in)
        return int(batch * (kept + unit))
    return int(batch * (c["scale"] * (c["resnet"] * terms.resnet + c["layer"] * terms.transformer)
                        + c["context"] * terms.context))


def step_bytes(activations: int, gradients: int) -> int:
    """What a step allocates and frees: activations and weight gradients overlap only partly."""
    return int(max(activations + GRAD_SHARE * gradients, GRAD_FLOOR * gradients))


def estimate_training_vram(
    arch: str | dict[str, Any],
    resolution: int | tuple[int, int],
    batch: int = 1,
    *,
    gradient_checkpointing: bool = False,
    mixed_precision: str = "fp16",
    weight_dtype: str = "fp16",
    fp8_base: bool = False,
    placement: bool = False,
    cache_text_encoder_outputs: bool = False,
    train_text_encoder: bool = False,
    vae_on_device: bool = False,
    network_dim: int = 16,
    network_params: int | None = None,
    optimizer: str = "adamw",
    counts: dict[str, int] | None = None,
    weights_on_device: int | None = None,
    text_configs: list[dict[str, Any]] | None = None,
    free_bytes: int | None = None,
    device: str = "cuda",
    tokens: int = 77,
) -> VramEstimate:
    """Estimate a bake's device memory.

    Args:
        arch (`str | dict`): ``"sd1"``/``"sd15"``/``"sdxl"`` (published shapes and sizes), or a
            diffusers U-Net config (then pass ``counts``/``network_params`` for exact sizes).
        resolution (`int | tuple`): training resolution (largest bucket), pixels.
        batch (`int`): images per step.
        gradient_checkpointing (`bool`): ``training.gradient_checkpointing``.
        mixed_precision (`str`): ``"fp16"``, ``"bf16"`` or ``"no"``/``"fp32"``.
        weight_dtype (`str`): the host's weight dtype (``"fp16"`` in A1111 without --no-half).
        fp8_base (`bool`): ``training.fp8_base``.
        placement (`bool`): the host keeps its model off the device (A1111 --medvram/--lowvram).
        cache_text_encoder_outputs (`bool`): captions encoded once (the text encoder can leave).
        train_text_encoder (`bool`): text-encoder adapters train.
        vae_on_device (`bool`): latents encoded every step (random_crop / color_aug).
        network_dim (`int`): LoRA rank (used when ``network_params`` is not given).
        network_params (`int`, *optional*): exact trained parameter count.
        optimizer (`str`): ``optimizer.type``.
        counts (`dict`, *optional*): ``unet_params``, ``unet_linear_conv``, ``text_params``, ``vae_params``
            for a config given as ``arch``.
        weights_on_device (`int`, *optional*): override the resident weight bytes (measurements).
        text_configs (`list[dict]`, *optional*): CLIP configs for trained text-encoder activations.
        free_bytes (`int`, *optional*): free device memory (``torch.cuda.mem_get_info()[0]``).
        device (`str`): ``"cuda"`` adds allocator slack; ``"cpu"`` does not.
        tokens (`int`): caption tokens (77, or 152/227 with max_token_length 150/225).

    Returns:
        `VramEstimate`
    """
    spec = ARCHS[arch] if isinstance(arch, str) else {"unet": arch, "text": text_configs or [], **(counts or {})}
    unet_config = spec["unet"]
    wbytes = _BYTES.get(weight_dtype, 2)
    est = VramEstimate(free=free_bytes, settings={
        "gradient_checkpointing": gradient_checkpointing, "fp8_base": fp8_base, "optimizer": optimizer,
        "cache_text_encoder_outputs": cache_text_encoder_outputs, "train_text_encoder": train_text_encoder,
        "batch": batch})
    unet_params = int(spec.get("unet_params", 0))
    linear_conv = int(spec.get("unet_linear_conv", unet_params))
    if fp8_base:
        unet = linear_conv + (unet_params - linear_conv) * wbytes
    else:
        unet = unet_params * wbytes
    text = int(spec.get("text_params", 0)) * wbytes
    vae = int(spec.get("vae_params", 0)) * wbytes
    text_resident = not placement or train_text_encoder or not cache_text_encoder_outputs
    vae_resident = not placement or vae_on_device
    if weights_on_device is not None:
        est.weights = weights_on_device
    else:
        est.weights = unet + (text if text_resident else 0) + (vae if vae_resident else 0)
    if network_params is None:
        per_rank = int(spec.get("lora_unet_per_rank", 0)) + (int(spec.get("lora_text_per_rank", 0)) if train_text_encoder else 0)
        network_params = per_rank * network_dim
    est.adapters = 4 * network_params
    est.gradients = 4 * network_params
    est.optimizer = OPTIMIZER_BYTES.get(optimizer, 8) * network_params
    activations = activation_bytes(unet_config, resolution, batch, gradient_checkpointing=gradient_checkpointing,
                                   mixed_precision=mixed_precision, tokens=tokens)
    if train_text_encoder and spec.get("text"):
        activations += int(TEXT_COEFFICIENT[_half(mixed_precision)] * text_terms(spec["text"], tokens) * batch)
    est.activations = step_bytes(activations, est.gradients) - est.gradients
    half = mixed_precision in ("fp16", "bf16")
    if half and (fp8_base or wbytes == 4):
        # autocast's per-layer copy of each fp8/fp32 weight is saved for backward (the weights do not
        # require grad, so autocast does not cache them, and their inputs need gradients); with
        # checkpointing only the layers outside the checkpointed units and the one being recomputed
        est.weight_casts = int(2 * linear_conv * (CHECKPOINTED_CAST_SHARE if gradient_checkpointing else 1.0))
    if est.weight_casts and not gradient_checkpointing:
        est.notes.append(f"{'fp8_base' if fp8_base else 'an fp32 model under mixed precision'} without gradient "
                         "checkpointing keeps an fp16/bf16 copy of every U-Net weight for backward; turn "
                         "training.gradient_checkpointing on to avoid it")
    if device == "cuda":
        est.overhead = int(CUDA_SLACK * (est.activations + est.weight_casts) + CUDA_WORKSPACE)
    return est


def compare(estimate: VramEstimate, measured_bytes: int) -> str:
    """One line for a GPU bench: the estimate against ``torch.cuda.max_memory_allocated()`` (overhead excluded)."""
    predicted = estimate.total - estimate.overhead
    ratio = predicted / measured_bytes if measured_bytes else float("nan")
    return (f"vram estimate {predicted / GIB:.2f} GiB vs max_memory_allocated {measured_bytes / GIB:.2f} GiB: "
            f"ratio {ratio:.2f} ({', '.join(f'{k} {v / GIB:.2f}' for k, v in estimate.parts().items())})")


__all__ = ["ARCHS", "VramEstimate", "activation_bytes", "compare", "estimate_training_vram", "step_bytes"]
