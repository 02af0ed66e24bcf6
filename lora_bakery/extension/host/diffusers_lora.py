"""LoRA files applied to ``DiffusersHost`` generations: kohya/LyCORIS files of any kind our trainer saves.

A1111 merges a LoRA into the weights and backs them up; here nothing of the host is ever written.
Each file becomes a :class:`lora_bakery.trainer.adapters.Network` over the host's zero-copy views
(the same adapter code that trained it, so the delta is the one A1111 computes), is applied for one
generation (``forward`` of the wrapped layers routed through the adapters) and removed after, which
leaves the host's tensors bitwise unchanged.

Per-block weights follow lbw exactly: the block ratio multiplies each layer's linear factor in the
file tensors (``lora_up``...; :mod:`.lora_blocks`) before they are loaded, the same function the
Compare tab's "bake block weights" uses, so a baked file and a block-weighted generation agree.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any

from .base import HostError, LoraSpec
from .lora_blocks import group_layers, scale_block_tensors

logger = logging.getLogger("lora_bakery.host.diffusers_lora")

# File-format markers -> registered adapter kind, for files without ``ss_network_module`` metadata.
_SUFFIX_KINDS = (
    ("dora_scale", "dora"),
    ("hada_w1_a", "loha"),
    ("lokr_w1", "lokr"),
    ("on_input", "ia3"),
    ("oft_blocks", "oft"),
    ("lora_up.weight", "lora"),
)
_CACHE_SIZE = 4


def _network_args(metadata: Mapping[str, str]) -> dict[str, str]:
    raw = metadata.get("ss_network_args")
    if not raw or raw == "None":
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def file_kind(tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> str:
    """The registered adapter kind of a network file: by its ``ss_network_module``/``algo``, else its keys.

    Raises:
        HostError: a file of a kind LoRA Bakery does not know.
    """
    from lora_bakery.trainer.adapters import ADAPTERS

    module = metadata.get("ss_network_module")
    if module:
        args = _network_args(metadata)
        matches = [
            kind for kind in ADAPTERS.values()
            if kind.network_module == module and kind.algo == args.get("algo")
            and all(args.get(k) == v for k, v in kind.network_args)
        ]
        if matches:  # the most specific (most fixed args) wins: DoRA over LyCORIS LoRA
            return max(matches, key=lambda k: len(k.network_args)).name
    suffixes = {key.partition(".")[2] for key in tensors}
    for marker, kind_name in _SUFFIX_KINDS:
        if marker in suffixes:
            return kind_name
    raise HostError(f"not a LoRA file LoRA Bakery can apply (network module {module!r})")


def _block_dict(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in text.split(","):
        block, _, value = item.partition("=")
        if value:
            out[block.strip()] = float(value) if "." in value else int(value)
    return out


def file_options(kind_name: str, tensors: Mapping[str, Any], metadata: Mapping[str, str], architecture: str) -> Any:
    """The kind's options that rebuild the file's layer set: from ``ss_network_*`` metadata, else from shapes.

    Without metadata only LoRA-family files can be read (their rank is ``lora_down``'s first dimension);
    per-block ranks are recovered as ``block_dims``.
    """
    import ast

    from lora_bakery.trainer.adapters import adapter_kind, make_options

    kind = adapter_kind(kind_name)
    names = {f.name for f in fields(kind.options)}
    values: dict[str, Any] = {}
    if metadata.get("ss_network_dim"):
        values["dim"] = int(float(metadata["ss_network_dim"]))
        values["alpha"] = float(metadata.get("ss_network_alpha") or values["dim"])
        for key, raw in _network_args(metadata).items():
            if key not in names or key in ("dim", "alpha", "extra_args"):
                continue
            if key.endswith(("block_dims", "block_alphas")):
                values[key] = _block_dict(raw)
                continue
            try:
                values[key] = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                values[key] = raw
        return make_options(kind_name, **values)
    return _options_from_shapes(kind_name, tensors, architecture)


def _options_from_shapes(kind_name: str, tensors: Mapping[str, Any], architecture: str) -> Any:
    from lora_bakery.trainer.adapters import make_options

    ranks: dict[tuple[str, bool], set[int]] = {}
    for layer, suffixes in group_layers(tensors).items():
        if "lora_down.weight" not in suffixes:
            raise HostError(f"{kind_name} file without ss_network_dim metadata: cannot tell its rank")
        down = tensors[f"{layer}.lora_down.weight"]
        conv3x3 = down.dim() == 4 and tuple(down.shape[2:]) != (1, 1)
        ranks.setdefault((_layer_block(layer, architecture), conv3x3), set()).add(int(down.shape[0]))
    linear = {b: max(r) for (b, c), r in ranks.items() if not c}
    conv = {b: max(r) for (b, c), r in ranks.items() if c}
    dim = max(linear.values(), default=4)
    values: dict[str, Any] = {"dim": dim, "alpha": float(dim), "block_dims": {b: r for b, r in linear.items() if r != dim}}
    if conv:
        values["conv_dim"] = max(conv.values())
        values["conv_block_dims"] = {b: r for b, r in conv.items() if r != values["conv_dim"]}
    return make_options(kind_name, **values)


def _layer_block(layer: str, architecture: str) -> str:
    """The trainer's block id (``rank_for`` key) of a file layer, read off its name."""
    from .lora_blocks import layer_block

    if layer.startswith("lora_te"):
        return "BASE"
    block = layer_block(layer) or ""
    if architecture == "sdxl" and block == "M00":
        return f"M{int(layer.split('middle_block_')[1].split('_')[0]):02d}"
    return block


def build_file_network(views: Any, tensors: Mapping[str, Any], metadata: Mapping[str, str]) -> Any:
    """A trainer ``Network`` over ``views`` holding a file's tensors (not applied).

    Args:
        views (`ModelViews`): the host's zero-copy views.
        tensors (`Mapping[str, torch.Tensor]`): file tensors (block weights already applied if any).
        metadata (`Mapping[str, str]`): the file's ``__metadata__``.

    Returns:
        `Network`: fp32 adapters on the views' device, layers the file names only.

    Raises:
        HostError: the file does not fit the loaded model.
    """
    import torch

    from lora_bakery.trainer.adapters import Network, adapter_kind
    from lora_bakery.trainer.adapters.targets import text_encoder_targets, unet_targets

    arch = views.architecture
    kind_name = file_kind(tensors, metadata)
    options = file_options(kind_name, tensors, metadata, arch)
    layers = group_layers(tensors)
    targets = text_encoder_targets(views.text_encoders, arch) + unet_targets(
        views.unet, arch, views.configs.unet, include_conv=True
    )
    chosen = [t for t in targets if t.name in layers]
    unknown = sorted(set(layers) - {t.name for t in chosen})
    if not chosen:
        raise HostError(
            f"none of the file's {len(layers)} layers exist in the loaded {arch} model "
            f"(e.g. {unknown[:2]}): is it a LoRA for another model family?"
        )
    if unknown:
        logger.warning("LoRA layers not in the loaded model, ignored as A1111 does: %d (e.g. %s)", len(unknown), unknown[:3])
    network = Network(adapter_kind(kind_name), options, arch, chosen)
    try:
        network.load_kohya_state_dict({k: v for k, v in tensors.items() if k.partition(".")[0] in network.adapters},
                                      strict=False)
    except ValueError as exc:
        raise HostError(f"the LoRA file does not fit the loaded model: {exc}") from exc
    device = next(views.unet.parameters()).device
    network.requires_grad_(False)
    return network.to(device=device, dtype=torch.float32).eval()  # eval: no dropout, DyLoRA uses all ranks


class FileNetworks:
    """Networks built from LoRA files, cached by (file, mtime, size, block weights).

    Rebuilding costs a file read and a pass over the views, so a grid that renders the same epoch
    at several weights builds it once; a re-written file (next epoch saved under the same name) is
    read again because its mtime changes.
    """

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def network(self, views: Any, spec: LoraSpec) -> Any:
        """The (unapplied) network for ``spec``, multipliers set from ``spec.te``/``spec.unet``."""
        from lora_bakery.trainer.saving import load_network

        path = os.path.abspath(spec.path)
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise HostError(f"LoRA file not found: {path}") from exc
        blocks = tuple(float(w) for w in spec.block_weights) if spec.block_weights is not None else None
        key = (path, stat.st_mtime_ns, stat.st_size, blocks, id(views))
        with self._lock:
            network = self._cache.get(key)
            if network is not None:
                self._cache.move_to_end(key)
        if network is None:
            try:
                tensors, metadata = load_network(path)
            except Exception as exc:  # safetensors' own error types for corrupt headers
                raise HostError(f"{os.path.basename(path)} is not a readable LoRA file: {exc}") from exc
            if blocks is not None:
                try:
                    tensors = scale_block_tensors(tensors, blocks)
                except ValueError as exc:
                    raise HostError(f"{os.path.basename(path)}: {exc}") from exc
            network = build_file_network(views, tensors, metadata)
            with self._lock:
                self._cache[key] = network
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        network.set_multiplier(float(spec.te), None if spec.unet is None else float(spec.unet))
        return network

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


@contextlib.contextmanager
def applied_loras(views: Any, specs: Sequence[LoraSpec], networks: FileNetworks) -> Iterator[list[Any]]:
    """Apply each spec's network to the views for the ``with`` block; always removed after (reverse order).

    Args:
        views (`ModelViews`): the host's views (what the pipeline runs).
        specs (`Sequence[LoraSpec]`): files with te/unet multipliers and optional block weights.
        networks (`FileNetworks`): the cache to build them from.

    Yields:
        `list[Network]`: the applied networks.
    """
    built = [networks.network(views, spec) for spec in specs]
    applied: list[Any] = []
    try:
        for network in built:
            network.apply()
            applied.append(network)
        yield applied
    finally:
        for network in reversed(applied):
            network.remove()


__all__ = ["FileNetworks", "applied_loras", "build_file_network", "file_kind", "file_options"]
