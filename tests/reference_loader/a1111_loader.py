"""AUTOMATIC1111 1.10.1 loading a LoRA file onto an LDM/SGM checkpoint, transcribed for tests.

Steps, as the built-in Lora extension does them (reference/a1111-host.md §6):

1. ``assign_network_names_to_compvis_modules``: every module of the loaded model gets a layer name,
   its dotted path with ``.`` -> ``_``: U-Net ``diffusion_model_...``; SD1 text encoder
   ``transformer_text_model_...``; SDXL ``0_transformer_text_model_...`` and OpenCLIP
   ``1_model_transformer_resblocks_N_attn`` (an ``nn.MultiheadAttention`` with fused ``in_proj``).
   Here the layers are read off checkpoint keys (``model.`` / ``cond_stage_model.`` /
   ``conditioner.embedders.N.`` stripped): the same names.
2. ``load_network``: each file key is split at its first ``.``; the name goes through
   ``convert_diffusers_name_to_compvis``, then the ``_[qkv]_proj`` fallback to the parent
   MultiheadAttention, then ``lora_unet`` -> ``diffusion_model`` and ``lora_te1_text_model`` ->
   ``0_transformer_text_model``. Unmatched keys are dropped (returned here, so tests can assert none).
3. ``network_apply_weights``: ``W += calc_updown(W)`` for every Linear/Conv the network names; a
   MultiheadAttention takes q/k/v/out together (each delta computed against the whole fused
   ``in_proj_weight``; a RuntimeError skips the layer, as A1111 only logs it).

The merged state dict can then be fed to ``build_views`` and compared with our in-memory adapters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from .a1111_modules import RefModule, create_module

re_digits = re.compile(r"\d+")
re_x_proj = re.compile(r"(.*)_([qkv]_proj)$")

suffix_conversion = {
    "attentions": {},
    "resnets": {
        "conv1": "in_layers_2",
        "conv2": "out_layers_3",
        "norm1": "in_layers_0",
        "norm2": "out_layers_0",
        "time_emb_proj": "emb_layers_1",
        "conv_shortcut": "skip_connection",
    },
}


def convert_diffusers_name_to_compvis(key: str, is_sd2: bool = False) -> str:
    """Transcribed from A1111 1.10.1 ``extensions-builtin/Lora/networks.py``."""

    def match(match_list: list, regex_text: str) -> bool:
        r = re.match(regex_text, key)
        if not r:
            return False
        match_list.clear()
        match_list.extend([int(x) if re.match(re_digits, x) else x for x in r.groups()])
        return True

    m: list = []
    if match(m, r"lora_unet_conv_in(.*)"):
        return f"diffusion_model_input_blocks_0_0{m[0]}"
    if match(m, r"lora_unet_conv_out(.*)"):
        return f"diffusion_model_out_2{m[0]}"
    if match(m, r"lora_unet_time_embedding_linear_(\d+)(.*)"):
        return f"diffusion_model_time_embed_{m[0] * 2 - 2}{m[1]}"
    if match(m, r"lora_unet_down_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)"):
        suffix = suffix_conversion.get(m[1], {}).get(m[3], m[3])
        return (
            f"diffusion_model_input_blocks_{1 + m[0] * 3 + m[2]}_{1 if m[1] == 'attentions' else 0}_{suffix}"
        )
    if match(m, r"lora_unet_mid_block_(attentions|resnets)_(\d+)_(.+)"):
        suffix = suffix_conversion.get(m[0], {}).get(m[2], m[2])
        return f"diffusion_model_middle_block_{1 if m[0] == 'attentions' else m[1] * 2}_{suffix}"
    if match(m, r"lora_unet_up_blocks_(\d+)_(attentions|resnets)_(\d+)_(.+)"):
        suffix = suffix_conversion.get(m[1], {}).get(m[3], m[3])
        return f"diffusion_model_output_blocks_{m[0] * 3 + m[2]}_{1 if m[1] == 'attentions' else 0}_{suffix}"
    if match(m, r"lora_unet_down_blocks_(\d+)_downsamplers_0_conv"):
        return f"diffusion_model_input_blocks_{3 + m[0] * 3}_0_op"
    if match(m, r"lora_unet_up_blocks_(\d+)_upsamplers_0_conv"):
        return f"diffusion_model_output_blocks_{2 + m[0] * 3}_{2 if m[0] > 0 else 1}_conv"
    if match(m, r"lora_te_text_model_encoder_layers_(\d+)_(.+)"):
        if is_sd2:
            if "mlp_fc1" in m[1]:
                return f"model_transformer_resblocks_{m[0]}_{m[1].replace('mlp_fc1', 'mlp_c_fc')}"
            if "mlp_fc2" in m[1]:
                return f"model_transformer_resblocks_{m[0]}_{m[1].replace('mlp_fc2', 'mlp_c_proj')}"
            return f"model_transformer_resblocks_{m[0]}_{m[1].replace('self_attn', 'attn')}"
        return f"transformer_text_model_encoder_layers_{m[0]}_{m[1]}"
    if match(m, r"lora_te2_text_model_encoder_layers_(\d+)_(.+)"):
        if "mlp_fc1" in m[1]:
            return f"1_model_transformer_resblocks_{m[0]}_{m[1].replace('mlp_fc1', 'mlp_c_fc')}"
        if "mlp_fc2" in m[1]:
            return f"1_model_transformer_resblocks_{m[0]}_{m[1].replace('mlp_fc2', 'mlp_c_proj')}"
        return f"1_model_transformer_resblocks_{m[0]}_{m[1].replace('self_attn', 'attn')}"
    return key


@dataclass
class Layer:
    """One module of the live model: a Linear/Conv weight, or a MultiheadAttention's fused weights."""

    name: str
    weight_key: str | None = None  # Linear / Conv2d
    in_proj_key: str | None = None  # MultiheadAttention
    out_proj_key: str | None = None
    called: bool = True  # False for an MHA's out_proj: MHA never calls its forward


_PREFIXES = (
    (re.compile(r"model\.(diffusion_model\..*)"), r"\1"),
    (re.compile(r"cond_stage_model\.(transformer\..*)"), r"\1"),
    (re.compile(r"conditioner\.embedders\.(\d+)\.(.*)"), r"\1_\2"),
)


def layer_mapping(checkpoint: Mapping[str, torch.Tensor]) -> dict[str, Layer]:
    """``sd_model.network_layer_mapping`` for the layers that hold weights, read off checkpoint keys."""
    layers: dict[str, Layer] = {}
    for key, tensor in checkpoint.items():
        for pattern, replacement in _PREFIXES:
            if pattern.fullmatch(key):
                path = pattern.sub(replacement, key)
                break
        else:
            continue
        if path.endswith(".in_proj_weight"):
            name = path[: -len(".in_proj_weight")].replace(".", "_")
            out_key = key[: -len("in_proj_weight")] + "out_proj.weight"
            layers[name] = Layer(name, in_proj_key=key, out_proj_key=out_key)
        elif path.endswith(".weight") and tensor.dim() in (2, 4):
            name = path[: -len(".weight")].replace(".", "_")
            layers.setdefault(name, Layer(name, weight_key=key))
    for layer in list(layers.values()):
        if layer.in_proj_key is not None:
            out = layers.get(layer.name + "_out_proj")
            if out is not None:
                out.called = False
    return layers


@dataclass
class LoadedNetwork:
    """``network.Network`` after ``load_network``: modules by layer key, plus what did not match."""

    modules: dict[str, RefModule] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)


def _out_dim(layer: Layer, checkpoint: Mapping[str, torch.Tensor]) -> int:
    key = layer.weight_key or layer.out_proj_key
    return int(checkpoint[key].shape[0])


def load_network(
    tensors: Mapping[str, torch.Tensor],
    checkpoint: Mapping[str, torch.Tensor],
    te_multiplier: float = 1.0,
    unet_multiplier: float | None = None,
) -> LoadedNetwork:
    """Match file keys to layers and build the modules (A1111 ``networks.load_network``)."""
    unet_multiplier = te_multiplier if unet_multiplier is None else unet_multiplier
    layers = layer_mapping(checkpoint)
    matched: dict[str, tuple[Layer, dict[str, torch.Tensor]]] = {}
    result = LoadedNetwork()
    for key_network, weight in tensors.items():
        base, _, part = key_network.partition(".")
        key = convert_diffusers_name_to_compvis(base)
        layer = layers.get(key)
        if layer is None:
            m = re_x_proj.match(key)
            if m:
                layer = layers.get(m.group(1))
        if layer is None and "lora_unet" in base:
            key = base.replace("lora_unet", "diffusion_model")
            layer = layers.get(key)
        elif layer is None and "lora_te1_text_model" in base:
            key = base.replace("lora_te1_text_model", "0_transformer_text_model")
            layer = layers.get(key)
            if layer is None:
                key = base.replace("lora_te1_text_model", "transformer_text_model")
                layer = layers.get(key)
        if layer is None:
            result.unmatched.append(key_network)
            continue
        matched.setdefault(key, (layer, {}))[1][part] = weight
    for key, (layer, w) in matched.items():
        result.modules[key] = create_module(
            key, w, (te_multiplier, unet_multiplier), _out_dim(layer, checkpoint)
        )
    return result


def merge_network(
    checkpoint: Mapping[str, torch.Tensor],
    tensors: Mapping[str, torch.Tensor],
    te_multiplier: float = 1.0,
    unet_multiplier: float | None = None,
) -> tuple[dict[str, torch.Tensor], LoadedNetwork, list[str]]:
    """A copy of ``checkpoint`` (fp32) with the file's deltas merged as A1111 merges them.

    Args:
        checkpoint (`Mapping[str, torch.Tensor]`): LDM/SGM checkpoint tensors.
        tensors (`Mapping[str, torch.Tensor]`): the LoRA file's tensors.
        te_multiplier (`float`, defaults to 1.0): ``<lora:name:te>``.
        unet_multiplier (`float`, *optional*): ``<lora:name:te:unet>`` (defaults to ``te_multiplier``).

    Returns:
        `tuple`: merged state dict, the loaded network, and the layers A1111 would skip with an error.
    """
    merged = {k: v.float().clone() if v.is_floating_point() else v.clone() for k, v in checkpoint.items()}
    network = load_network(tensors, checkpoint, te_multiplier, unet_multiplier)
    layers = layer_mapping(checkpoint)
    errors: list[str] = []
    used: set[str] = set()
    for name, layer in layers.items():
        if layer.weight_key is not None and layer.called and name in network.modules:
            with torch.no_grad():
                weight = merged[layer.weight_key]
                merged[layer.weight_key] = weight + network.modules[name].calc_updown(weight)
            used.add(name)
            continue
        if layer.in_proj_key is None:
            continue
        parts = [network.modules.get(f"{name}_{p}") for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
        if not all(parts):
            continue
        try:
            with torch.no_grad():
                in_proj = merged[layer.in_proj_key]
                qkv = torch.vstack([module.calc_updown(in_proj) for module in parts[:3]])
                out = merged[layer.out_proj_key]
                out_delta = parts[3].calc_updown(out)
                merged[layer.in_proj_key] = in_proj + qkv
                merged[layer.out_proj_key] = out + out_delta
            used.update(f"{name}_{p}" for p in ("q_proj", "k_proj", "v_proj", "out_proj"))
        except RuntimeError:
            errors.append(name)
    errors += sorted(set(network.modules) - used - set(errors))
    return merged, network, errors
