"""The kohya ``ss_*`` metadata keys that come from the config, as kohya writes them.

Source: SD:train_network.py (the ``metadata = {...}`` block) — every value is ``str(v)``, so unset
options read ``"None"``, booleans ``"True"``/``"False"`` and floats Python's ``repr`` (``"0.0001"``,
``"16.0"``: kohya's ``--network_alpha`` is a float). Keys that depend on the run (session id,
times, image counts, tag frequency, bucket info, hashes) are added by the dataset and the saver;
see reference/kohya-trainer.md §3.
"""

from __future__ import annotations

import json
from typing import Any

from .dataset import SUBSET_DEFAULTS
from .sections import parse_kv_args
from .train import TrainConfig

# kohya's ``ss_network_module`` per adapter kind; the LyCORIS kinds carry ``algo`` in network args.
NETWORK_MODULES: dict[str, tuple[str, dict[str, str]]] = {
    "lora": ("networks.lora", {}),
    "locon": ("networks.lora", {}),
    "dylora": ("networks.dylora", {}),
    "dora": ("lycoris.kohya", {"algo": "lora", "dora_wd": "True"}),
    "loha": ("lycoris.kohya", {"algo": "loha"}),
    "lokr": ("lycoris.kohya", {"algo": "lokr"}),
    "ia3": ("lycoris.kohya", {"algo": "ia3"}),
    "oft": ("lycoris.kohya", {"algo": "diag-oft"}),
}

# ``optimizer.__class__.__module__ + "." + __name__`` as kohya records it.
OPTIMIZER_CLASS_NAMES: dict[str, str] = {
    "adamw": "torch.optim.adamw.AdamW",
    "adamw8bit": "bitsandbytes.optim.adamw.AdamW8bit",
    "prodigy": "prodigyopt.prodigy.Prodigy",
    "dadaptadam": "dadaptation.dadapt_adam.DAdaptAdam",
    "lion": "lion_pytorch.lion_pytorch.Lion",
}


def base_model_version(architecture: str, v_pred: bool) -> str:
    """``ss_base_model_version``: ``sd_v1``, ``sd_v2`` (+ ``_v``), or ``sdxl_base_v1-0``."""
    if architecture == "sdxl":
        return "sdxl_base_v1-0"
    base = "sd_v2" if architecture == "sd2" else "sd_v1"
    return base + "_v" if v_pred else base


def network_args(config: TrainConfig) -> dict[str, str]:
    """The ``network_args`` kohya/LyCORIS would have been given for this network (all strings)."""
    net = config.network
    _, args = NETWORK_MODULES[net.type]
    out = dict(args)
    if net.conv_dim is not None:
        out["conv_dim"] = str(net.conv_dim)
        out["conv_alpha"] = str(net.conv_alpha if net.conv_alpha is not None else 1.0)
    if net.rank_dropout is not None:
        out["rank_dropout"] = str(net.rank_dropout)
    if net.module_dropout is not None:
        out["module_dropout"] = str(net.module_dropout)
    if net.type == "dylora":
        out["unit"] = str(net.dylora_unit)
    for name in ("block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas"):
        values = getattr(net, name)
        if values is not None:
            out[name] = ",".join(str(v) for v in values)
    if net.block_lr_weights is not None:
        out["block_lr_weights"] = ",".join(str(v) for v in net.block_lr_weights)
    out.update(parse_kv_args(net.args, "network.args", literal=False))
    return out


def _warmup(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _subset_default(config: TrainConfig, key: str) -> Any:
    value = getattr(config.dataset.general, key)
    return SUBSET_DEFAULTS[key] if value is None else value


def to_ss_metadata(
    config: TrainConfig,
    *,
    architecture: str,
    v_pred: bool = False,
    clip_skip: int | None = None,
    num_epochs: int | None = None,
    max_train_steps: int | None = None,
    optimizer_name: str | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The config-derived ``ss_*`` keys, every value a string exactly as kohya writes it.

    Args:
        config (`TrainConfig`): the run's config.
        architecture (`str`): ``"sd1"``, ``"sd2"`` or ``"sdxl"`` (from the host's model).
        v_pred (`bool`, *optional*): v-prediction model (``training.v_pred`` when set wins).
        clip_skip (`int`, *optional*): the clip skip actually used; default ``training.clip_skip``.
        num_epochs (`int`, *optional*): epochs of the run; default ``training.epochs``.
        max_train_steps (`int`, *optional*): optimizer steps of the run; default ``training.max_steps``.
        optimizer_name (`str`, *optional*): module-qualified optimizer class; default from the type.
        optimizer_kwargs (`dict`, *optional*): the kwargs given to it; default the parsed ``optimizer.args``.

    Returns:
        `dict[str, str]`: ``ss_*`` keys (``ss_network_args`` only when there are any).
    """
    tr, net, opt, sv = config.training, config.network, config.optimizer, config.saving
    v = tr.v_pred if tr.v_pred is not None else v_pred
    module, _ = NETWORK_MODULES[net.type]
    kwargs = opt.parsed_args() if optimizer_kwargs is None else optimizer_kwargs
    opt_args = ",".join(f"{k}={val}" for k, val in kwargs.items())
    name = optimizer_name or OPTIMIZER_CLASS_NAMES[opt.type]
    general = config.dataset.general
    meta: dict[str, Any] = {
        "ss_output_name": sv.output_name,
        "ss_learning_rate": opt.lr,
        "ss_text_encoder_lr": opt.text_encoder_lr,
        "ss_unet_lr": opt.unet_lr,
        "ss_num_epochs": tr.epochs if num_epochs is None else num_epochs,
        "ss_gradient_checkpointing": tr.gradient_checkpointing,
        "ss_gradient_accumulation_steps": tr.grad_accum,
        "ss_max_train_steps": tr.max_steps if max_train_steps is None else max_train_steps,
        "ss_lr_warmup_steps": _warmup(opt.warmup),
        "ss_lr_scheduler": opt.scheduler,
        "ss_network_module": module,
        "ss_network_dim": net.dim,
        "ss_network_alpha": net.alpha,
        "ss_network_dropout": net.dropout,
        "ss_mixed_precision": tr.mixed_precision,
        "ss_full_fp16": False,
        "ss_v2": architecture == "sd2",
        "ss_base_model_version": base_model_version(architecture, bool(v)),
        "ss_clip_skip": tr.clip_skip if clip_skip is None else clip_skip,
        "ss_max_token_length": tr.max_token_length,
        "ss_cache_latents": bool(tr.cache_latents or tr.cache_latents_to_disk),
        "ss_seed": tr.seed,
        "ss_lowram": False,
        "ss_noise_offset": tr.noise_offset,
        "ss_multires_noise_iterations": tr.multires_noise_iterations,
        "ss_multires_noise_discount": tr.multires_noise_discount,
        "ss_adaptive_noise_scale": tr.adaptive_noise_scale,
        "ss_zero_terminal_snr": tr.zero_terminal_snr,
        "ss_training_comment": sv.training_comment,
        "ss_optimizer": name + (f"({opt_args})" if opt_args else ""),
        "ss_max_grad_norm": opt.max_grad_norm,
        "ss_caption_dropout_rate": _subset_default(config, "caption_dropout_rate"),
        "ss_caption_dropout_every_n_epochs": _subset_default(config, "caption_dropout_every_n_epochs"),
        "ss_caption_tag_dropout_rate": _subset_default(config, "caption_tag_dropout_rate"),
        "ss_face_crop_aug_range": general.face_crop_aug_range,
        "ss_prior_loss_weight": tr.prior_loss_weight,
        "ss_min_snr_gamma": tr.min_snr_gamma,
        "ss_scale_weight_norms": net.scale_weight_norms,
        "ss_ip_noise_gamma": tr.ip_noise_gamma,
        "ss_debiased_estimation": tr.debiased_estimation,
        "ss_noise_offset_random_strength": tr.noise_offset_random_strength,
        "ss_ip_noise_gamma_random_strength": tr.ip_noise_gamma_random_strength,
        "ss_loss_type": tr.loss_type,
        "ss_huber_schedule": tr.huber_schedule,
        "ss_huber_scale": tr.huber_scale,
        "ss_huber_c": tr.huber_c,
        "ss_fp8_base": False,
        "ss_fp8_base_unet": False,
        "ss_validation_seed": general.validation_seed,
        "ss_validation_split": float(general.validation_split or 0.0),
        "ss_max_validation_steps": None,
        "ss_validate_every_n_epochs": None,
        "ss_validate_every_n_steps": None,
        "ss_resize_interpolation": general.resize_interpolation,
    }
    args = network_args(config)
    if args:
        meta["ss_network_args"] = json.dumps(args)
    return {k: str(val) for k, val in meta.items()}
