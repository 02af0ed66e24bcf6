"""Block analysis without generation: per-block ‖ΔW‖_F of each epoch, as a heatmap and lines.

For every layer ``ΔW = up @ down · alpha/rank`` (the delta A1111 adds at multiplier 1); its
Frobenius norm is computed from the small Gram matrices, ``‖U D‖²_F = Σ (UᵀU) ⊙ (D Dᵀ)``, so a
full-size LoCon costs a few rank×rank products per layer instead of out×in products. Layer norms
are summed per lbw block (:mod:`lora_bakery.extension.host.lora_blocks`), which shows which blocks
carry what the LoRA learned and when they grew.

Kinds: LoRA/LoCon/DyLoRA (and DoRA's low-rank direction), LoHa (explicit product), LoKr
(``‖A⊗B‖ = ‖A‖·‖B‖``). IA3 and OFT deltas depend on the base weights and are skipped (reported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_bakery.extension.host.lora_blocks import BLOCKID26, group_layers, layer_block

OTHER = "OTHER"


@dataclass
class BlockNorms:
    """Per-block ‖ΔW‖ of several files.

    Attributes:
        blocks (`list[str]`): row labels (lbw block ids present in any file, BLOCKID26 order).
        labels (`list[str]`): column labels (one per file, e.g. epochs).
        values (`list[list[float]]`): ``values[block][file]`` (sum of layer norms).
        skipped (`list[str]`): layers whose delta needs the base weights (IA3, OFT).
    """

    blocks: list[str]
    labels: list[str]
    values: list[list[float]]
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"blocks": self.blocks, "labels": self.labels, "values": self.values, "skipped": self.skipped[:20]}


def _frob_product(up: Any, down: Any) -> float:
    """‖up @ down‖_F with ``up`` [out, r], ``down`` [r, n] (flattened), via r×r Gram matrices."""
    u = up.reshape(up.shape[0], -1).float()
    d = down.reshape(down.shape[0], -1).float()
    if u.shape[1] != d.shape[0]:  # lora_up [out, r, 1, 1] flattened keeps r last
        raise ValueError(f"rank mismatch {tuple(up.shape)} @ {tuple(down.shape)}")
    value = float(((u.T @ u) * (d @ d.T)).sum())
    return max(value, 0.0) ** 0.5


def layer_norm(tensors: Mapping[str, Any], layer: str, suffixes: Sequence[str]) -> float | None:
    """‖ΔW‖_F of one file layer at multiplier 1, or ``None`` when it needs the base weights."""
    def t(suffix: str) -> Any:
        return tensors[f"{layer}.{suffix}"]

    alpha = float(t("alpha")) if "alpha" in suffixes else None
    if "lora_mid.weight" in suffixes:  # LyCORIS Tucker form: not written by our trainer
        return None
    if "lora_up.weight" in suffixes:
        down = t("lora_down.weight")
        rank = down.shape[0]
        scale = (alpha / rank) if alpha is not None else 1.0
        return _frob_product(t("lora_up.weight"), down) * abs(scale)
    if "hada_w1_a" in suffixes:
        w1 = t("hada_w1_a").float() @ t("hada_w1_b").float().reshape(t("hada_w1_b").shape[0], -1)
        w2 = t("hada_w2_a").float() @ t("hada_w2_b").float().reshape(t("hada_w2_b").shape[0], -1)
        rank = t("hada_w1_b").shape[0]
        scale = (alpha / rank) if alpha is not None else 1.0
        return float((w1 * w2).norm()) * abs(scale)
    if "lokr_w1" in suffixes or "lokr_w1_a" in suffixes:
        w1 = t("lokr_w1").float() if "lokr_w1" in suffixes else t("lokr_w1_a").float() @ t("lokr_w1_b").float()
        if "lokr_w2" in suffixes:
            n2, rank = float(t("lokr_w2").float().norm()), None
        else:
            n2, rank = _frob_product(t("lokr_w2_a"), t("lokr_w2_b")), t("lokr_w2_b").shape[0]
        scale = (alpha / rank) if (alpha is not None and rank) else 1.0
        return float(w1.norm()) * n2 * abs(scale)
    if "diff" in suffixes:
        return float(t("diff").float().norm())
    return None


def file_block_norms(tensors: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Per-block sums of layer ‖ΔW‖_F for one file.

    Returns:
        `tuple[dict[str, float], list[str]]`: block id (or ``"OTHER"``) -> sum, and skipped layers.
    """
    sums: dict[str, float] = {}
    skipped = []
    for layer, suffixes in group_layers(tensors).items():
        norm = layer_norm(tensors, layer, suffixes)
        if norm is None:
            skipped.append(layer)
            continue
        block = layer_block(layer) or OTHER
        sums[block] = sums.get(block, 0.0) + norm
    return sums, skipped


def block_norms(files: Sequence[str | Path], labels: Sequence[str] | None = None) -> BlockNorms:
    """Per-block ‖ΔW‖ for each file (e.g. every epoch of a run).

    Args:
        files (`Sequence[str | Path]`): ``.safetensors`` network files.
        labels (`Sequence[str]`, *optional*): column labels; file stems by default.

    Returns:
        `BlockNorms`: blocks × files.
    """
    import torch

    from lora_bakery.trainer.saving import load_network

    per_file = []
    skipped: list[str] = []
    # The products are rank×rank: one thread is fastest, and intra-op threads fighting over busy
    # cores made this 100× slower in measurements (0.16 s vs 27 s per full-size LoCon file).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for path in files:
            tensors, _ = load_network(path)
            sums, skip = file_block_norms(tensors)
            per_file.append(sums)
            skipped = skipped or skip
    finally:
        torch.set_num_threads(threads)
    present = {b for sums in per_file for b in sums}
    order = BLOCKID26 + [OTHER]
    blocks = [b for b in order if b in present]
    values = [[sums.get(b, 0.0) for sums in per_file] for b in blocks]
    return BlockNorms(blocks, list(labels) if labels else [Path(f).stem for f in files], values, skipped)


def plot_block_norms(norms: BlockNorms, path: str | Path, title: str = "Per-block ‖ΔW‖") -> Path:
    """Heatmap (blocks × epochs) and one line per block, in one PNG (matplotlib Agg, atomic write).

    Args:
        norms (`BlockNorms`): from :func:`block_norms`.
        path (`str | Path`): the PNG to write.
        title (`str`, *optional*): figure title.

    Returns:
        `Path`: the PNG.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import numpy as np
    from matplotlib.figure import Figure

    data = np.asarray(norms.values, dtype=float) if norms.values else np.zeros((0, len(norms.labels)))
    fig = Figure(figsize=(max(6.0, 1.0 + 0.6 * len(norms.labels)) + 6.0, max(4.0, 0.28 * len(norms.blocks) + 1.5)))
    ax_map, ax_lines = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    if data.size:
        image = ax_map.imshow(data, aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax_map, fraction=0.046)
    ax_map.set_yticks(range(len(norms.blocks)), norms.blocks, fontsize=7)
    ax_map.set_xticks(range(len(norms.labels)), norms.labels, rotation=45, ha="right", fontsize=7)
    ax_map.set_title("blocks × epochs")
    for row, block in zip(data, norms.blocks):
        ax_lines.plot(range(len(norms.labels)), row, marker="o", markersize=3, label=block)
    ax_lines.set_xticks(range(len(norms.labels)), norms.labels, rotation=45, ha="right", fontsize=7)
    ax_lines.set_ylabel("sum of layer ‖ΔW‖_F")
    ax_lines.set_title("per block over epochs")
    if norms.blocks:
        ax_lines.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title)
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def _save_figure(fig: Any, path: Path) -> Path:
    from lora_bakery.trainer.atomic import write_via_temp

    return write_via_temp(path, lambda stream: fig.savefig(stream, dpi=100, format="png"))


__all__ = ["BlockNorms", "block_norms", "file_block_norms", "layer_norm", "plot_block_norms"]
