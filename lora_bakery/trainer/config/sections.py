"""The non-dataset sections of the training config: model, network, optimizer, training, saving,
sampling, logging.

Defaults follow reference/kohya-trainer.md §8 (community defaults) where kohya's own argparse
defaults are known traps (``learning_rate`` 2e-6, dim 4 / alpha 1); where a value is "unset" in
kohya (``noise_offset`` None, …) it is ``None`` here too, so the ``ss_*`` metadata reads the same.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .fields import Section, opt

NETWORK_TYPES = ("lora", "locon", "dora", "loha", "lokr", "ia3", "oft", "dylora")
OPTIMIZER_TYPES = ("adamw", "adamw8bit", "prodigy", "dadaptadam", "lion")
SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "cosine_annealing_warmup_restarts",
)
PRECISIONS = ("fp16", "bf16", "no")
SAVE_PRECISIONS = ("fp16", "bf16", "float")
LOSS_TYPES = ("l2", "l1", "huber", "smooth_l1")
HUBER_SCHEDULES = ("constant", "exponential", "snr")
BLOCK_COUNTS = {"sd1": 25, "sd2": 25, "sdxl": 23}  # kohya block_dims lengths (reference §2)
_BAD_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]')


def parse_kv_args(args: list[str], field: str, *, literal: bool) -> dict[str, Any]:
    """Parse kohya-style ``k=v`` strings, with errors that say which entry and how to fix it.

    kohya splits on ``=`` and, for optimizer args, runs ``ast.literal_eval`` on the value
    (SD:library/train_util.py ``get_optimizer``), so ``betas=0.9,0.99`` is a tuple and booleans must
    be ``True``/``False``. Lower-case ``true``/``false`` are accepted here too (a common slip), and a
    bare word that is not a Python literal stays a string.

    Args:
        args (`list[str]`): the entries.
        field (`str`): the field path for errors (``"optimizer.args"``).
        literal (`bool`): evaluate values as Python literals (optimizer) or keep strings (network).

    Returns:
        `dict[str, Any]`: key → value.
    """
    out: dict[str, Any] = {}
    for i, entry in enumerate(args):
        name = f"{field}[{i}]"
        if "=" not in entry:
            raise ConfigError(name, f"{entry!r} is not key=value (e.g. weight_decay=0.01)")
        key, value = entry.split("=", 1)
        key, value = key.strip(), value.strip()
        if not key.isidentifier():
            raise ConfigError(name, f"{key!r} is not a valid argument name")
        if key in out:
            raise ConfigError(name, f"{key!r} is given twice")
        if not literal:
            out[key] = value
            continue
        if value.lower() in ("true", "false"):
            out[key] = value.lower() == "true"
            continue
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            if re.fullmatch(r"[A-Za-z_][\w.\-]*", value):
                out[key] = value
            else:
                raise ConfigError(
                    name,
                    f"cannot read the value {value!r}: write numbers as 0.01, tuples as 0.9,0.99, text in quotes",
                ) from None
    return out


@dataclass
class ModelSection(Section):
    """Which model to train on. Inside a webui the loaded model is used and these stay unset."""

    checkpoint: str | None = opt(
        None,
        "Single-file .safetensors checkpoint for `bakery train`; unset = the model the host has loaded.",
        group="General",
    )
    vae: str | None = opt(None, "External VAE .safetensors used to encode the images.", group="General")


#: Per-block lists of the network section (kohya's block_dims …): 25 values for SD1, 23 for SDXL.
BLOCK_LIST_FIELDS = ("block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas", "block_lr_weights")


@dataclass
class NetworkSection(Section):
    """The adapter: type, rank, alpha, what it wraps."""

    type: str = opt("lora", "Adapter kind.", group="Network", choices=NETWORK_TYPES)
    dim: int = opt(
        32,
        "Rank of linear layers (recipes: 32; poses and concepts 1).",
        group="Network",
        min=1,
        kohya="network_dim",
    )
    alpha: float = opt(
        16.0, "Scale = alpha / dim (recipes: half the dim).", group="Network", min=0.0, kohya="network_alpha"
    )
    conv_dim: int | None = opt(
        None, "Rank of 3x3 convolutions (LoCon and LyCORIS types); unset = none.", group="Network", min=1
    )
    conv_alpha: float | None = opt(
        None, "Alpha of 3x3 convolutions; default 1 when conv_dim is set.", group="Network", min=0.0
    )
    dropout: float | None = opt(
        None,
        "Dropout on the down projection's output.",
        group="Network",
        min=0.0,
        below=1.0,
        kohya="network_dropout",
    )
    rank_dropout: float | None = opt(
        None, "Dropout of whole ranks per sample.", group="Network", min=0.0, below=1.0
    )
    module_dropout: float | None = opt(
        None, "Chance of skipping a whole module in a step.", group="Network", min=0.0, below=1.0
    )
    train_unet: bool = opt(True, "Train the U-Net.", group="Network")
    train_text_encoder: bool = opt(True, "Train the text encoder(s).", group="Network")
    block_dims: list[int] | None = opt(
        None, "Rank per U-Net block: 25 values (SD1) or 23 (SDXL).", group="Network", min=0
    )
    block_alphas: list[float] | None = opt(
        None, "Alpha per U-Net block, same length as block_dims.", group="Network", min=0.0
    )
    conv_block_dims: list[int] | None = opt(
        None, "Conv rank per U-Net block (LoCon).", group="Network", min=0
    )
    conv_block_alphas: list[float] | None = opt(None, "Conv alpha per U-Net block.", group="Network", min=0.0)
    block_lr_weights: list[float] | None = opt(
        None,
        "Learning-rate weight per U-Net block (25 or 23 values); 0 leaves a block out.",
        group="Network",
        min=0.0,
    )
    dylora_unit: int = opt(
        4, "DyLoRA: rank band trained per step; dim must be a multiple.", group="Network", min=1
    )
    scale_weight_norms: float | None = opt(
        None, "Cap on each module's weight norm (recipes: 1; not with Prodigy).", group="Network", min=0.0
    )
    args: list[str] = opt([], "Extra network arguments as key=value (kohya network_args).", group="Network")

    def check(self) -> None:
        if not (self.train_unet or self.train_text_encoder):
            raise ConfigError("train_unet", "train the U-Net, the text encoder, or both")
        if self.type == "locon" and self.conv_dim is None:
            raise ConfigError("conv_dim", "LoCon needs conv_dim (recipes: 32 or 16, never above 64)")
        if self.type == "dylora" and self.dim % self.dylora_unit:
            raise ConfigError("dim", f"DyLoRA needs dim to be a multiple of dylora_unit ({self.dylora_unit})")
        lengths = set(BLOCK_COUNTS.values())
        for name in BLOCK_LIST_FIELDS:
            values = getattr(self, name)
            if values is not None and len(values) not in lengths:
                raise ConfigError(name, f"needs 25 values (SD1) or 23 (SDXL), got {len(values)}")
        for name, base in (("block_alphas", "block_dims"), ("conv_block_alphas", "conv_block_dims")):
            values, dims = getattr(self, name), getattr(self, base)
            if values is not None and (dims is None or len(dims) != len(values)):
                raise ConfigError(name, f"needs {base} of the same length")
        parse_kv_args(self.args, "args", literal=False)

    def check_architecture(self, architecture: str) -> None:
        """Per-block lists must match the model family, known only once the model is."""
        expected = BLOCK_COUNTS.get(architecture)
        for name in BLOCK_LIST_FIELDS:
            values = getattr(self, name)
            if expected and values is not None and len(values) != expected:
                raise ConfigError(
                    f"network.{name}", f"{architecture} needs {expected} values, got {len(values)}"
                )


@dataclass
class OptimizerSection(Section):
    """Optimizer and learning-rate schedule."""

    type: str = opt("adamw", "Optimizer.", group="Optimizer", choices=OPTIMIZER_TYPES, kohya="optimizer_type")
    lr: float = opt(
        1e-4, "Learning rate (Prodigy/DAdapt: 1).", group="Optimizer", min=0.0, kohya="learning_rate"
    )
    unet_lr: float | None = opt(None, "U-Net learning rate; unset = lr.", group="Optimizer", min=0.0)
    text_encoder_lr: float | None = opt(
        None, "Text-encoder learning rate; unset = lr.", group="Optimizer", min=0.0
    )
    args: list[str] = opt(
        [],
        "Optimizer arguments as key=value, e.g. weight_decay=0.01.",
        group="Optimizer",
        kohya="optimizer_args",
    )
    scheduler: str = opt(
        "cosine", "Learning-rate schedule.", group="Optimizer", choices=SCHEDULERS, kohya="lr_scheduler"
    )
    warmup: float = opt(
        0.0,
        "Warmup: a number of steps, or below 1 a fraction of all steps.",
        group="Optimizer",
        min=0.0,
        kohya="lr_warmup_steps",
    )
    cycles: int = opt(
        1,
        "Cycles of cosine with restarts / annealed restarts.",
        group="Optimizer",
        min=1,
        kohya="lr_scheduler_num_cycles",
    )
    power: float = opt(
        1.0, "Power of the polynomial schedule.", group="Optimizer", min=0.0, kohya="lr_scheduler_power"
    )
    min_lr: float = opt(1e-6, "Lowest learning rate of annealed restarts.", group="Optimizer", min=0.0)
    gamma: float = opt(
        0.9, "Peak decay per cycle of annealed restarts (1 = none).", group="Optimizer", min=0.0, max=1.0
    )
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 = off).", group="Optimizer", min=0.0)

    def check(self) -> None:
        parse_kv_args(self.args, "args", literal=True)

    def warmup_steps(self, total_steps: int) -> int:
        """The warmup as a step count (kohya: a value below 1 is a fraction of ``total_steps``)."""
        return int(self.warmup * total_steps) if self.warmup < 1 else int(self.warmup)

    def parsed_args(self) -> dict[str, Any]:
        """``args`` as keyword arguments for the optimizer class."""
        return parse_kv_args(self.args, "optimizer.args", literal=True)


@dataclass
class TrainingSection(Section):
    """Loop length, precision, noise and loss options."""

    epochs: int = opt(8, "Epochs (recipes: 8).", group="General", min=1, kohya="max_train_epochs")
    max_steps: int | None = opt(
        None,
        "Stop after this many optimizer steps (overrides epochs).",
        group="General",
        min=1,
        kohya="max_train_steps",
    )
    batch_size: int = opt(
        1, "Images per batch (datasets may override).", group="General", min=1, kohya="train_batch_size"
    )
    grad_accum: int = opt(
        1, "Batches per optimizer step.", group="General", min=1, kohya="gradient_accumulation_steps"
    )
    mixed_precision: str = opt(
        "fp16", "Autocast precision; adapters train in fp32.", group="General", choices=PRECISIONS
    )
    gradient_checkpointing: bool = opt(False, "Trade compute for memory.", group="General")
    cuda_graphs: bool = opt(
        False, "On a CUDA GPU, replay each step's U-Net forward and backward as a CUDA graph (much less CPU "
        "time per step; used only when nothing random runs inside the U-Net, without gradient accumulation "
        "or checkpointing; falls back to normal steps by itself). Experimental: not yet measured on a GPU.",
        group="General",
    )
    cache_text_encoder_outputs: bool = opt(
        False,
        "Encode every caption once before training and free the text encoder (not with text-encoder training, "
        "shuffle_caption, caption/tag dropout, token warmup or wildcards). On by itself under --medvram/--lowvram "
        "when allowed.",
        group="General",
        kohya="cache_text_encoder_outputs",
    )
    fp8_base: bool = opt(
        False,
        "Keep the frozen U-Net's Linear/Conv weights in fp8 for the bake (about half its VRAM); needs bf16/fp16 "
        "mixed precision and torch 2.1+.",
        group="General",
        kohya="fp8_base",
    )
    seed: int = opt(42, "Seed of everything random in training.", group="General", min=0)
    clip_skip: int | None = opt(
        None,
        "Use the n-th last text-encoder layer; unset = the host's setting.",
        group="General",
        min=1,
        max=12,
    )
    max_token_length: int | None = opt(
        None, "Caption token length: 75, 150 or 225.", group="General", choices=(75, 150, 225)
    )
    cache_latents: bool = opt(True, "Encode images once and keep the latents in memory.", group="General")
    cache_latents_to_disk: bool = opt(
        False, "Also keep latents on disk (in the dataset's .bakery folder).", group="General"
    )
    masked_loss: bool = opt(
        False,
        "Weight the loss by masks (conditioning_data_dir or alpha_mask); images without a mask, or with an "
        "all-black one, are left out and listed.",
        group="General",
    )
    skip_bad_images: bool = opt(
        False,
        "Leave out images that cannot be decoded (listed before the first step) instead of stopping; "
        "every image is then fully decoded before caching starts.",
        group="General",
    )
    prior_loss_weight: float = opt(1.0, "Loss weight of regularization images.", group="General", min=0.0)
    v_pred: bool | None = opt(
        None, "v-prediction model; unset = from the model.", group="Noise", kohya="v_parameterization"
    )
    noise_offset: float | None = opt(None, "Noise offset (recipes: ~0.1, rarely).", group="Noise", min=0.0)
    noise_offset_random_strength: bool = opt(
        False, "Draw the offset uniformly from 0..noise_offset.", group="Noise"
    )
    adaptive_noise_scale: float | None = opt(
        None, "Add this times |mean latent| to the offset.", group="Noise"
    )
    multires_noise_iterations: int | None = opt(
        None, "Pyramid noise iterations (6-10).", group="Noise", min=1
    )
    multires_noise_discount: float = opt(0.3, "Pyramid noise discount.", group="Noise", min=0.0, max=1.0)
    ip_noise_gamma: float | None = opt(
        None, "Input perturbation noise (recipes: 0.1).", group="Noise", min=0.0
    )
    ip_noise_gamma_random_strength: bool = opt(
        False, "Draw ip_noise_gamma uniformly from 0..gamma.", group="Noise"
    )
    min_snr_gamma: float | None = opt(None, "Min-SNR weighting gamma (recipes: 5).", group="Noise", min=0.0)
    debiased_estimation: bool = opt(
        False, "Debiased estimation loss weighting.", group="Noise", kohya="debiased_estimation_loss"
    )
    zero_terminal_snr: bool = opt(False, "Rescale the noise schedule to zero terminal SNR.", group="Noise")
    loss_type: str = opt("l2", "Element-wise loss.", group="Noise", choices=LOSS_TYPES)
    huber_schedule: str = opt(
        "snr", "How the Huber c changes with the timestep.", group="Noise", choices=HUBER_SCHEDULES
    )
    huber_c: float = opt(0.1, "Huber c.", group="Noise", min=0.0)
    huber_scale: float = opt(1.0, "Huber scale.", group="Noise", min=0.0)
    min_timestep: int = opt(0, "Smallest timestep drawn.", group="Noise", min=0, max=1000)
    max_timestep: int = opt(1000, "Largest timestep drawn (exclusive).", group="Noise", min=1, max=1000)

    def check(self) -> None:
        if self.min_timestep >= self.max_timestep:
            raise ConfigError("min_timestep", f"must be below max_timestep ({self.max_timestep})")


@dataclass
class SavingSection(Section):
    """Where and how often files are written."""

    output_dir: str = opt("", "Folder for the LoRA files.", group="Saving")
    output_name: str = opt("lora", "File name without extension; epochs add -000001.", group="Saving")
    save_every_n_epochs: int = opt(1, "Save every N epochs (0 = only the final file).", group="Saving", min=0)
    keep_last_n: int | None = opt(
        None, "Keep only the last N epoch files.", group="Saving", min=1, kohya="save_last_n_epochs"
    )
    save_precision: str = opt(
        "fp16", "Precision of the saved weights.", group="Saving", choices=SAVE_PRECISIONS
    )
    save_state: bool = opt(False, "Also save optimizer/scheduler/RNG state to resume.", group="Saving")
    resume: str | None = opt(None, "State folder to resume from.", group="Saving")
    overwrite: bool = opt(False, "Replace existing files of the same name.", group="Saving")
    training_comment: str | None = opt(
        None, "Comment stored in the file (e.g. trigger words).", group="Saving"
    )
    metadata_title: str | None = opt(None, "Title in the file's modelspec metadata.", group="Saving")
    metadata_author: str | None = opt(None, "Author in the file's modelspec metadata.", group="Saving")

    def check(self) -> None:
        if not self.output_name.strip():
            raise ConfigError("output_name", "must not be empty")
        if _BAD_NAME.search(self.output_name) or self.output_name in (".", ".."):
            raise ConfigError("output_name", f"{self.output_name!r} is not a valid file name")


@dataclass
class SamplingSection(Section):
    """Sample images made during training through the host."""

    prompts: list[str] = opt(
        [], "Prompts, one per entry, with kohya flags --n --w --h --d --l --s.", group="Samples"
    )
    prompts_file: str | None = opt(
        None, "Prompt file (.txt, kohya syntax); used with prompts.", group="Samples", kohya="sample_prompts"
    )
    every_n_epochs: int = opt(
        1, "Sample every N epochs (0 = never).", group="Samples", min=0, kohya="sample_every_n_epochs"
    )
    sampler: str = opt(
        "Euler a", "Sampler name as the host lists it.", group="Samples", kohya="sample_sampler"
    )
    steps: int = opt(20, "Sampling steps.", group="Samples", min=1, max=1000)
    cfg_scale: float = opt(7.0, "CFG scale.", group="Samples", min=0.0)
    width: int | None = opt(None, "Width; unset = the training resolution.", group="Samples", min=64)
    height: int | None = opt(None, "Height; unset = the training resolution.", group="Samples", min=64)
    seed: int = opt(1234, "Seed of prompts without --d.", group="Samples", min=0)
    negative: str = opt("", "Negative prompt of prompts without --n.", group="Samples")


@dataclass
class LoggingSection(Section):
    """Logs written during training."""

    log_dir: str | None = opt(
        None, "Folder for logs; unset = output_dir/logs.", group="Saving", kohya="logging_dir"
    )
    tensorboard: bool = opt(True, "Write TensorBoard logs when tensorboard is installed.", group="Saving")
    loss_plot: bool = opt(True, "Draw the loss curve as a PNG each epoch.", group="Saving")
