"""The parts of A1111 1.10.1 ``extensions-builtin/Lora/networks.py`` the adapter relies on.

Copied: ``assign_network_names_to_compvis_modules``, the lookup in ``load_networks`` (aliases,
rescan of unknown names, mtime-checked memory cache), and the in-place merge with CPU backups of
``network_apply_weights`` / ``network_restore_weights_from_backup``. Simplified: a loaded
network's delta on a layer is ``0.01 * multiplier`` everywhere (te multiplier when
``"transformer"`` is in the first 20 characters of the layer name, else unet) instead of
``up @ down * scale`` for files without ``lora_up``/``lora_down`` layers (those get the real
``up @ down * alpha / rank`` on their layer), and it touches every layer with a weight except embeddings (LoraPatches
patches Linear/Conv2d/GroupNorm/LayerNorm/MultiheadAttention, not Embedding); what matters to the
adapter is that weights change in place and must be restored.
"""

import os

import torch

from tests.fakes.a1111 import shared

from . import network

available_networks = {}
available_network_aliases = {}
forbidden_network_aliases = {}
loaded_networks = []
networks_in_memory = {}
lora_dir = None  # the fake --lora-dir (None: no folder scanned)
load_calls = []  # names passed to load_networks, per call
loaded_files = []  # files actually read


def reset():
    available_networks.clear()
    available_network_aliases.clear()
    forbidden_network_aliases.clear()
    loaded_networks.clear()
    networks_in_memory.clear()
    load_calls.clear()
    loaded_files.clear()


def assign_network_names_to_compvis_modules(sd_model):
    network_layer_mapping = {}
    if sd_model.is_sdxl:
        for i, embedder in enumerate(sd_model.conditioner.embedders):
            if not hasattr(embedder, "wrapped"):
                continue
            for name, module in embedder.wrapped.named_modules():
                network_name = f'{i}_{name.replace(".", "_")}'
                network_layer_mapping[network_name] = module
                module.network_layer_name = network_name
    else:
        cond_stage_model = getattr(sd_model.cond_stage_model, "wrapped", sd_model.cond_stage_model)
        for name, module in cond_stage_model.named_modules():
            network_name = name.replace(".", "_")
            network_layer_mapping[network_name] = module
            module.network_layer_name = network_name
    for name, module in sd_model.model.named_modules():
        network_name = name.replace(".", "_")
        network_layer_mapping[network_name] = module
        module.network_layer_name = network_name
    sd_model.network_layer_mapping = network_layer_mapping


def process_network_files(names=None):
    if not lora_dir or not os.path.isdir(lora_dir):
        return
    for entry_name in sorted(os.listdir(lora_dir)):
        filename = os.path.join(lora_dir, entry_name)
        name, ext = os.path.splitext(entry_name)
        if ext.lower() not in (".pt", ".ckpt", ".safetensors") or (names and name not in names):
            continue
        entry = network.NetworkOnDisk(name, filename)
        available_networks[name] = entry
        if entry.alias in available_network_aliases:
            forbidden_network_aliases[entry.alias.lower()] = 1
        available_network_aliases[name] = entry
        available_network_aliases[entry.alias] = entry


def list_available_networks():
    available_networks.clear()
    available_network_aliases.clear()
    forbidden_network_aliases.clear()
    forbidden_network_aliases.update({"none": 1, "Addams": 1})
    process_network_files()


def load_network(name, network_on_disk):
    """Read the file; ``lora_up``/``lora_down`` layers whose A1111 name the model has become
    ``NetworkModuleLora`` entries (conversion simplified to ``load_network``'s fallbacks:
    ``lora_unet`` -> ``diffusion_model``, ``lora_te_`` -> ``transformer_``)."""
    from safetensors.torch import load_file

    net = network.Network(name, network_on_disk)
    net.mtime = os.path.getmtime(network_on_disk.filename)
    loaded_files.append(network_on_disk.filename)
    tensors = load_file(network_on_disk.filename) if network_on_disk.is_safetensors else {}
    mapping = getattr(shared.sd_model, "network_layer_mapping", {})
    layers = {}
    for key, tensor in tensors.items():
        layer, _, suffix = key.partition(".")
        layers.setdefault(layer, {})[suffix] = tensor
    for layer, weights in layers.items():
        if "lora_up.weight" not in weights or "lora_down.weight" not in weights:
            continue
        key = layer.replace("lora_unet", "diffusion_model", 1).replace("lora_te_", "transformer_", 1)
        if key not in mapping:
            continue
        net.modules[key] = network.NetworkModuleLora(key, weights)
    return net


def load_networks(names, te_multipliers=None, unet_multipliers=None, dyn_dims=None):
    load_calls.append(list(names))
    already_loaded = {net.name: net for net in loaded_networks if net.name in names}
    loaded_networks.clear()

    unavailable = [n for n in names if (n.lower() in forbidden_network_aliases and available_networks.get(n) is None)
                   or available_network_aliases.get(n) is None]
    if unavailable:
        process_network_files(unavailable)

    def lookup(n):
        return available_networks.get(n) if n.lower() in forbidden_network_aliases else available_network_aliases.get(n)

    on_disk = [lookup(n) for n in names]
    if any(x is None for x in on_disk):
        list_available_networks()
        on_disk = [lookup(n) for n in names]

    failed = []
    for i, (network_on_disk, name) in enumerate(zip(on_disk, names)):
        net = already_loaded.get(name)
        if network_on_disk is not None:
            if net is None:
                net = networks_in_memory.get(name)
            if net is None or os.path.getmtime(network_on_disk.filename) > net.mtime:
                net = load_network(name, network_on_disk)
                networks_in_memory.pop(name, None)
                networks_in_memory[name] = net
            net.mentioned_name = name
        if net is None:
            failed.append(name)
            continue
        net.te_multiplier = te_multipliers[i] if te_multipliers else 1.0
        net.unet_multiplier = unet_multipliers[i] if unet_multipliers else 1.0
        net.dyn_dim = dyn_dims[i] if dyn_dims else 1.0
        loaded_networks.append(net)
    return failed


def store_weights_backup(weight):
    if weight is None:
        return None
    return weight.to("cpu", copy=True)


def restore_weights_backup(obj, field, weight):
    if weight is None:
        setattr(obj, field, None)
        return
    getattr(obj, field).copy_(weight)


def network_restore_weights_from_backup(self):
    weights_backup = getattr(self, "network_weights_backup", None)
    bias_backup = getattr(self, "network_bias_backup", None)
    if weights_backup is None and bias_backup is None:
        return
    if weights_backup is not None:
        restore_weights_backup(self, "weight", weights_backup)
    restore_weights_backup(self, "bias", bias_backup)


def network_apply_weights(self):
    """What the patched ``forward`` of every Linear/Conv/Norm layer runs first (merge mode)."""
    network_layer_name = getattr(self, "network_layer_name", None)
    if network_layer_name is None or not isinstance(getattr(self, "weight", None), torch.Tensor):
        return
    if network_layer_name.endswith("_embedding") or network_layer_name.endswith("_embedding_wrapped"):
        return  # nn.Embedding is not patched
    current_names = getattr(self, "network_current_names", ())
    wanted_names = tuple((x.name, x.te_multiplier, x.unet_multiplier, x.dyn_dim) for x in loaded_networks)

    weights_backup = getattr(self, "network_weights_backup", None)
    if weights_backup is None and wanted_names != ():
        if current_names != ():
            raise RuntimeError(f"{network_layer_name} - no backup weights found and current weights are not unchanged")
        self.network_weights_backup = store_weights_backup(self.weight)

    bias_backup = getattr(self, "network_bias_backup", None)
    if bias_backup is None and wanted_names != ():
        bias = getattr(self, "bias", None)
        bias_backup = store_weights_backup(bias) if isinstance(bias, torch.Tensor) else None
        if bias_backup is not None and current_names != ():
            raise RuntimeError("no backup bias found and current bias are not unchanged")
        self.network_bias_backup = bias_backup

    if current_names != wanted_names:
        network_restore_weights_from_backup(self)
        for net in loaded_networks:
            te = "transformer" in network_layer_name[:20]
            multiplier = net.te_multiplier if te else net.unet_multiplier
            with torch.no_grad():
                if not net.modules:  # files without LoRA layers: a token delta everywhere
                    self.weight.copy_(self.weight + 0.01 * multiplier)
                elif network_layer_name in net.modules:
                    module = net.modules[network_layer_name]
                    self.weight.copy_(self.weight + module.calc_updown(self.weight) * multiplier)
        self.network_current_names = wanted_names


def network_reset_cached_weight(self):
    self.network_current_names = ()
    self.network_weights_backup = None
    self.network_bias_backup = None
