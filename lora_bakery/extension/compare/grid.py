"""XYZ grids of a LoRA's epochs × weights × block weights × prompt S/R × seeds × CFG.

A grid is planned first (pure data: :func:`plan_cells`, :func:`plan_requests`), then rendered
through ``Host.generate`` (:func:`run_grid`), so in A1111 every cell goes through the webui's own
LoRA loader with the file where it is. Cells that differ only by consecutive seeds share one
request (``batch_size``), and requests are ordered so the LoRA set changes as rarely as possible.
Seeds are fixed: ``-1`` is replaced by one random seed for the whole grid before planning.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lora_bakery.extension.host.base import GenerationRequest, LoraSpec, NullProgress, Progress

from .presets import DEFAULT_PRESETS, resolve_blocks

AXIS_KINDS = ("epoch", "weight", "te_weight", "unet_weight", "blocks", "prompt_sr", "seed", "cfg")


@dataclass
class Axis:
    """One grid axis.

    Attributes:
        kind (`str`): one of :data:`AXIS_KINDS`.
        values (`list`): epoch: file paths; weight/te_weight/unet_weight/cfg: floats; blocks: preset
            names or vectors; prompt_sr: strings (the first is searched, each replaces it); seed: ints.
        labels (`list[str]`, *optional*): shown on the grid; derived from the values by default.
    """

    kind: str
    values: list[Any]
    labels: list[str] | None = None

    def __post_init__(self) -> None:
        if self.kind not in AXIS_KINDS:
            raise ValueError(f"axis kind {self.kind!r} is not one of {', '.join(AXIS_KINDS)}")
        if not self.values:
            raise ValueError(f"{self.kind} axis has no values")
        if self.labels is not None and len(self.labels) != len(self.values):
            raise ValueError(f"{self.kind} axis: {len(self.labels)} labels for {len(self.values)} values")

    def label(self, index: int) -> str:
        if self.labels is not None:
            return self.labels[index]
        value = self.values[index]
        if self.kind == "epoch":
            return Path(str(value)).stem
        if self.kind == "blocks":
            return value if isinstance(value, str) else ",".join(f"{v:g}" for v in value)
        names = {"weight": "weight", "te_weight": "TE", "unet_weight": "UNet", "seed": "Seed", "cfg": "CFG"}
        return f"{names[self.kind]}: {value}" if self.kind in names else str(value)


@dataclass
class GridSpec:
    """Everything a grid needs besides the host.

    Attributes:
        prompt (`str`), negative_prompt (`str`): the base prompts (prompt S/R edits both).
        lora (`str`, *optional*): the LoRA file when there is no epoch axis.
        weight (`float`, defaults to 1.0): text-encoder (and U-Net) multiplier when no weight axis.
        unet_weight (`float`, *optional*): separate U-Net multiplier.
        blocks (`str | list[float]`, *optional*): block weights when there is no blocks axis.
        seed (`int`, defaults to -1), width/height/steps/cfg_scale/sampler: generation settings.
        x, y, z (`Axis`, *optional*): the axes.
        presets (`dict[str, list[float]]`, *optional*): block presets (defaults + user file).
        max_batch (`int`, defaults to 4): largest ``batch_size`` for cells that share settings.
    """

    prompt: str
    negative_prompt: str = ""
    lora: str | None = None
    weight: float = 1.0
    unet_weight: float | None = None
    blocks: str | list[float] | None = None
    seed: int = -1
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str | None = None
    x: Axis | None = None
    y: Axis | None = None
    z: Axis | None = None
    presets: dict[str, list[float]] | None = None
    max_batch: int = 4


@dataclass
class Cell:
    """One grid cell's settings (what its image was made with)."""

    x: int
    y: int
    z: int
    prompt: str
    negative_prompt: str
    seed: int
    cfg_scale: float
    lora: str | None
    te: float
    unet: float | None
    blocks: list[float] | None
    blocks_label: str = ""

    def settings_key(self) -> tuple:
        """Everything but the seed (cells with equal keys may share a request)."""
        blocks = tuple(self.blocks) if self.blocks is not None else None
        return (self.lora or "", blocks, self.te, self.unet, self.prompt, self.negative_prompt, self.cfg_scale)

    def lora_tag(self) -> str:
        """The ``<lora:…>`` prompt tag that reproduces this cell in txt2img (lbw syntax for blocks)."""
        if not self.lora:
            return ""
        parts = [Path(self.lora).stem, f"{self.te:g}"]
        if self.unet is not None:
            parts.append(f"{self.unet:g}")
        if self.blocks is not None:
            parts.append("lbw=" + (self.blocks_label if self.blocks_label in DEFAULT_PRESETS
                                   else ",".join(f"{v:g}" for v in self.blocks)))
        return "<lora:" + ":".join(parts) + ">"

    def txt2img_prompt(self) -> str:
        """The prompt that reproduces this cell in txt2img: its prompt followed by its ``<lora:…>`` tag."""
        return " ".join(x for x in (self.prompt, self.lora_tag()) if x)


def _quote(value: Any) -> str:
    """A1111's infotext quoting: JSON-quoted when the value holds ``,``, ``:`` or a newline."""
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ",:\n") else text


def cell_infotext(cell: Cell, spec: GridSpec) -> str:
    """The cell as an A1111 infotext (prompt with its ``<lora:…>`` tag, negative prompt, parameters line),
    what the webui's "Send to txt2img" pastes into the txt2img fields."""
    params = [("Steps", spec.steps)]
    if spec.sampler:
        params.append(("Sampler", spec.sampler))
    params += [("CFG scale", f"{cell.cfg_scale:g}"), ("Seed", cell.seed), ("Size", f"{spec.width}x{spec.height}")]
    lines = [cell.txt2img_prompt()]
    if cell.negative_prompt:
        lines.append(f"Negative prompt: {cell.negative_prompt}")
    lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in params))
    return "\n".join(lines)


def _axes(spec: GridSpec) -> list[Axis | None]:
    axes = [spec.x, spec.y, spec.z]
    kinds = [a.kind for a in axes if a is not None]
    for kind in set(kinds):
        if kinds.count(kind) > 1:
            raise ValueError(f"the {kind} axis is used twice")
    if "weight" in kinds and ("te_weight" in kinds or "unet_weight" in kinds):
        raise ValueError("use either a weight axis or separate TE/UNet weight axes")
    if spec.lora is None and "epoch" not in kinds:
        raise ValueError("pick a LoRA file or an epoch axis")
    return axes


def plan_cells(spec: GridSpec) -> list[Cell]:
    """Every cell of the grid in z, y, x order, with fixed seeds.

    Raises:
        ValueError: a duplicated axis, no LoRA, an unknown preset, or a prompt S/R term not in the prompt.
    """
    axes = _axes(spec)
    presets = spec.presets if spec.presets is not None else DEFAULT_PRESETS
    seed = spec.seed if spec.seed >= 0 else random.randrange(2**32 - 1024)
    sizes = [len(a.values) if a is not None else 1 for a in axes]
    for a in axes:
        if a is not None and a.kind == "prompt_sr" and str(a.values[0]) not in spec.prompt + spec.negative_prompt:
            raise ValueError(f"prompt S/R: {a.values[0]!r} is not in the prompt")
    cells = []
    for z, y, x in itertools.product(range(sizes[2]), range(sizes[1]), range(sizes[0])):
        values = {"prompt": spec.prompt, "negative_prompt": spec.negative_prompt, "seed": seed,
                  "cfg_scale": spec.cfg_scale, "lora": spec.lora, "te": spec.weight, "unet": spec.unet_weight,
                  "blocks": spec.blocks}
        for axis, index in zip(axes, (x, y, z)):
            if axis is None:
                continue
            value = axis.values[index]
            if axis.kind == "epoch":
                values["lora"] = str(value)
            elif axis.kind == "weight":
                values["te"], values["unet"] = float(value), None
            elif axis.kind == "te_weight":
                values["te"] = float(value)
                if values["unet"] is None:
                    values["unet"] = spec.weight
            elif axis.kind == "unet_weight":
                values["unet"] = float(value)
            elif axis.kind == "blocks":
                values["blocks"] = value
            elif axis.kind == "prompt_sr":
                search = str(axis.values[0])
                values["prompt"] = values["prompt"].replace(search, str(value))
                values["negative_prompt"] = values["negative_prompt"].replace(search, str(value))
            elif axis.kind == "seed":
                values["seed"] = int(value)
            elif axis.kind == "cfg":
                values["cfg_scale"] = float(value)
        raw_blocks = values.pop("blocks")
        blocks = resolve_blocks(raw_blocks, presets) if raw_blocks is not None else None
        label = raw_blocks if isinstance(raw_blocks, str) else ""
        cells.append(Cell(x=x, y=y, z=z, blocks=blocks, blocks_label=label, **values))
    return cells


def plan_requests(spec: GridSpec, cells: Sequence[Cell]) -> list[tuple[GenerationRequest, list[int]]]:
    """Group cells into requests: equal settings and consecutive seeds share one (``batch_size``).

    Returns:
        `list[tuple[GenerationRequest, list[int]]]`: each request with the indices of its cells (in
        its image order); requests ordered by LoRA file, block weights and multipliers.
    """
    groups: dict[tuple, list[int]] = {}
    for index, cell in enumerate(cells):
        groups.setdefault(cell.settings_key(), []).append(index)
    out = []
    for key in sorted(groups, key=lambda k: (k[0], str(k[1]), k[2], -1 if k[3] is None else k[3], k[4], k[6])):
        members = sorted(groups[key], key=lambda i: cells[i].seed)
        run: list[int] = []
        for index in members + [-1]:
            extend = (index >= 0 and run and cells[index].seed == cells[run[-1]].seed + 1
                      and len(run) < max(1, spec.max_batch))
            if run and not extend:
                out.append((_request(spec, cells[run[0]], len(run)), run))
                run = []
            if index >= 0:
                run.append(index)
    return out


def _request(spec: GridSpec, cell: Cell, batch: int) -> GenerationRequest:
    loras = [LoraSpec(cell.lora, te=cell.te, unet=cell.unet, block_weights=cell.blocks)] if cell.lora else []
    return GenerationRequest(
        prompt=cell.prompt, negative_prompt=cell.negative_prompt, seed=cell.seed, width=spec.width,
        height=spec.height, steps=spec.steps, cfg_scale=cell.cfg_scale, sampler=spec.sampler,
        batch_size=batch, loras=loras,
    )


class _HostSide:
    """The Progress handed to ``Host.generate``: previews and interrupts pass through, counts stay ours."""

    def __init__(self, outer: Progress) -> None:
        self.outer = outer

    def begin(self, total: int, text: str = "") -> None:
        pass

    def step(self, n: int = 1, text: str | None = None) -> None:
        pass

    def preview(self, image: Any) -> None:
        self.outer.preview(image)

    @property
    def interrupted(self) -> bool:
        return self.outer.interrupted

    def end(self) -> None:
        pass


@dataclass
class GridResult:
    """A rendered grid: files, labels, and every cell's settings (for "send to txt2img")."""

    grid: Path | None
    grids: list[Path]
    cells: list[dict[str, Any]]
    x_labels: list[str]
    y_labels: list[str]
    z_labels: list[str]
    interrupted: bool = False
    images: list[Any] = field(default_factory=list, repr=False)


def run_grid(host: Any, spec: GridSpec, out_dir: str | Path, progress: Progress | None = None) -> GridResult:
    """Render the grid through ``host.generate``; save each cell, each Z grid and the joined grid.

    Args:
        host (`Host`): the generating host.
        spec (`GridSpec`): what to render.
        out_dir (`str | Path`): folder for ``grid.png``, ``grid-z<k>.png``, ``cells/`` and ``grid.json``.
        progress (`Progress`, *optional*): one step per cell; interrupting stops between requests
            (unrendered cells stay grey).

    Returns:
        `GridResult`.
    """
    from .draw import labelled_grid, side_by_side
    from .files import save_png_atomic, write_json_atomic

    progress = progress or NullProgress()
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    cells = plan_cells(spec)
    requests = plan_requests(spec, cells)
    images: list[Any] = [None] * len(cells)
    side = _HostSide(progress)
    progress.begin(len(cells), "Compare grid")
    interrupted = False
    try:
        for req, members in requests:
            if progress.interrupted:
                interrupted = True
                break
            results = host.generate([req], side)
            for index, result in zip(members, results):
                images[index] = result.image
                cell = cells[index]
                save_png_atomic(result.image, out / "cells" / f"cell-z{cell.z}-y{cell.y}-x{cell.x}.png")
            progress.step(len(members), f"{sum(im is not None for im in images)}/{len(cells)} cells")
            if len(results) < len(members):
                interrupted = True
                break
    finally:
        progress.end()
    axes = [spec.x, spec.y, spec.z]
    labels = [[a.label(i) for i in range(len(a.values))] if a is not None else [""] for a in axes]
    nx, ny, nz = (len(v) for v in labels)
    grids = []
    for z in range(nz):
        rows = [[images[z * nx * ny + y * nx + x] for x in range(nx)] for y in range(ny)]
        title = labels[2][z] if spec.z is not None else ""
        grid = labelled_grid(rows, labels[0] if spec.x else [""] * nx, labels[1] if spec.y else [""] * ny, title)
        grids.append(save_png_atomic(grid, out / (f"grid-z{z}.png" if nz > 1 else "grid.png")))
    joined = grids[0]
    if nz > 1:
        from PIL import Image

        joined = save_png_atomic(side_by_side([Image.open(p) for p in grids]), out / "grid.png")
    rows_json = []
    for cell, image in zip(cells, images):
        row = asdict(cell)
        row["lora_tag"] = cell.lora_tag()
        row["txt2img_prompt"] = cell.txt2img_prompt()
        row["infotext"] = cell_infotext(cell, spec)
        row["file"] = f"cells/cell-z{cell.z}-y{cell.y}-x{cell.x}.png" if image is not None else None
        rows_json.append(row)
    write_json_atomic(out / "grid.json", {"x": labels[0], "y": labels[1], "z": labels[2], "cells": rows_json,
                                          "interrupted": interrupted})
    return GridResult(joined, grids, rows_json, labels[0], labels[1], labels[2], interrupted, images)


__all__ = ["AXIS_KINDS", "Axis", "Cell", "GridResult", "GridSpec", "plan_cells", "plan_requests", "run_grid"]
