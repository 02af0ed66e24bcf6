"""Compare: epochs × weights × block weights grids, block analysis, block-weight baking.

Public API:

- :func:`list_epochs` / :func:`epoch_file` / :class:`EpochFile` — a run folder's (or one file's) epoch files
  with their metadata.
- :class:`GridSpec`, :class:`Axis`, :func:`plan_cells`, :func:`plan_requests`, :func:`run_grid` — XYZ grids
  through ``Host.generate`` (cells saved, A1111-style labelled grid, ``grid.json``).
- :data:`DEFAULT_PRESETS`, :func:`load_presets`, :func:`save_presets`, :func:`resolve_blocks` — lbw presets.
- :func:`block_norms`, :func:`plot_block_norms` — per-block ‖ΔW‖ per epoch (no generation).
- :func:`block_effects` — the image-space block analyzer.
- :func:`bake_block_weights` — a new file with block ratios baked into ``lora_up`` (exact, linear).

Block ids and the key -> block mapping live in :mod:`lora_bakery.extension.host.lora_blocks`
(the hosts apply ``LoraSpec.block_weights`` with them).
"""

from __future__ import annotations

from .analysis import BlockNorms, block_norms, file_block_norms, plot_block_norms
from .bake import BakeResult, bake_block_weights, default_output
from .effect import BlockEffect, block_effects, changed_percent
from .epochs import EpochFile, epoch_file, latest_run, list_epochs, read_metadata
from .grid import AXIS_KINDS, Axis, Cell, GridResult, GridSpec, plan_cells, plan_requests, run_grid
from .presets import DEFAULT_PRESETS, load_presets, parse_presets, parse_vector, resolve_blocks, save_presets

__all__ = [
    "AXIS_KINDS",
    "Axis",
    "BakeResult",
    "BlockEffect",
    "BlockNorms",
    "Cell",
    "DEFAULT_PRESETS",
    "EpochFile",
    "GridResult",
    "GridSpec",
    "bake_block_weights",
    "block_effects",
    "block_norms",
    "changed_percent",
    "default_output",
    "epoch_file",
    "file_block_norms",
    "latest_run",
    "list_epochs",
    "load_presets",
    "parse_presets",
    "parse_vector",
    "plan_cells",
    "plan_requests",
    "plot_block_norms",
    "read_metadata",
    "resolve_blocks",
    "run_grid",
    "save_presets",
]
