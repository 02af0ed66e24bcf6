"""``NetworkOnDisk`` / ``Network`` as in A1111 1.10.1 ``extensions-builtin/Lora/network.py`` (metadata,
alias from ``ss_output_name``, hash from ``sshs_model_hash``, SD version from ``ss_*``)."""

import enum
import os

from tests.fakes.a1111 import sd_models


class SdVersion(enum.Enum):
    Unknown = 1
    SD1 = 2
    SD2 = 3
    SDXL = 4


class NetworkOnDisk:
    def __init__(self, name, filename):
        self.name = name
        self.filename = filename
        self.metadata = {}
        self.is_safetensors = os.path.splitext(filename)[1].lower() == ".safetensors"
        if self.is_safetensors:
            self.metadata = sd_models.read_metadata_from_safetensors(filename)
        self.alias = self.metadata.get("ss_output_name", self.name)
        self.hash = None
        self.shorthash = None
        self.set_hash(self.metadata.get("sshs_model_hash") or "")
        self.sd_version = self.detect_version()

    def detect_version(self):
        if str(self.metadata.get("ss_base_model_version", "")).startswith("sdxl_"):
            return SdVersion.SDXL
        elif str(self.metadata.get("ss_v2", "")) == "True":
            return SdVersion.SD2
        elif len(self.metadata):
            return SdVersion.SD1
        return SdVersion.Unknown

    def set_hash(self, v):
        self.hash = v
        self.shorthash = self.hash[0:12]

    def read_hash(self):
        pass

    def get_alias(self):
        return self.alias


class Network:  # LoraModule
    def __init__(self, name, network_on_disk):
        self.name = name
        self.network_on_disk = network_on_disk
        self.te_multiplier = 1.0
        self.unet_multiplier = 1.0
        self.dyn_dim = None
        self.modules = {}
        self.bundle_embeddings = {}
        self.mtime = None
        self.mentioned_name = None


class _Weight:
    """Stands in for the ``nn.Linear``/``nn.Conv2d`` A1111 keeps as ``up_model``/``down_model``."""

    def __init__(self, weight):
        self.weight = weight.float().clone()


class NetworkModuleLora:
    """``network_lora.NetworkModuleLora``: ``up_model``/``down_model``, ``alpha``; delta = up @ down * alpha / rank."""

    def __init__(self, network_key, weights):
        self.network_key = network_key
        self.up_model = _Weight(weights["lora_up.weight"])
        self.down_model = _Weight(weights["lora_down.weight"])
        self.alpha = float(weights["alpha"]) if "alpha" in weights else None
        self.dim = self.down_model.weight.shape[0]

    def calc_updown(self, target):
        up = self.up_model.weight.reshape(self.up_model.weight.shape[0], -1)
        down = self.down_model.weight.reshape(self.dim, -1)
        scale = self.alpha / self.dim if self.alpha is not None else 1.0
        return ((up @ down) * scale).reshape(target.shape).to(target.dtype)
