"""Fake ``modules.sd_models``: ``CheckpointInfo`` fields (A1111 1.10.1) and safetensors metadata reading."""

import json
import os
import struct


class CheckpointInfo:
    def __init__(self, filename, sha256=None, legacy_hash=None):
        self.filename = filename
        abspath = os.path.abspath(filename)
        self.name = os.path.basename(abspath)
        self.name_for_extra = os.path.splitext(self.name)[0]
        self.model_name = self.name_for_extra
        self.hash = legacy_hash
        self.sha256 = sha256
        self.shorthash = sha256[0:10] if sha256 else None
        self.title = self.name if self.shorthash is None else f"{self.name} [{self.shorthash}]"
        self.short_title = self.name_for_extra if self.shorthash is None else f"{self.name_for_extra} [{self.shorthash}]"
        self.metadata = {}


def read_metadata_from_safetensors(filename):
    with open(filename, mode="rb") as file:
        metadata_len = struct.unpack("<Q", file.read(8))[0]
        header = json.loads(file.read(metadata_len))
    res = {}
    for k, v in header.get("__metadata__", {}).items():
        if isinstance(v, str) and v[0:1] == "{":
            try:
                v = json.loads(v)
            except Exception:
                pass
        res[k] = v
    return res
