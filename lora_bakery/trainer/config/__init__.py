"""The training config: one dataclass tree for the UI form, the CLI, the TOML file and the metadata.

Public API:

- :class:`TrainConfig` (``from_dict``/``to_dict``, ``from_toml``/``to_toml``, ``load``/``save``,
  ``check_ready``, ``warnings``) and its sections (:class:`NetworkSection`, …).
- :class:`ConfigError` — every bad value names its field (``"network.dim"``).
- Flat/UI and CLI: :func:`fields`, :func:`to_flat`, :func:`from_flat`, :func:`add_arguments`, :func:`from_args`.
- kohya dataset configs: :func:`dataset_from_kohya`, :func:`dataset_to_kohya`, :func:`is_kohya_dataset_config`.
- Metadata: :func:`to_ss_metadata`, :func:`base_model_version`, :func:`network_args`.
- Presets: :func:`list_presets`, :func:`load_preset` (TOML files in ``lora_bakery/trainer/presets/``).

Import-light: no torch.
"""

from __future__ import annotations

from .dataset import (
    DATASET_DEFAULTS,
    SUBSET_DEFAULTS,
    DatasetBlock,
    DatasetGeneral,
    DatasetSection,
    ResolvedSubset,
    Subset,
)
from .errors import ConfigError
from .flat import add_arguments, fields, from_args, from_flat, to_flat
from .metadata import NETWORK_MODULES, OPTIMIZER_CLASS_NAMES, base_model_version, network_args, to_ss_metadata
from .presets import list_presets, load_preset, preset_path
from .sections import (
    NETWORK_TYPES,
    OPTIMIZER_TYPES,
    SCHEDULERS,
    LoggingSection,
    ModelSection,
    NetworkSection,
    OptimizerSection,
    SamplingSection,
    SavingSection,
    TrainingSection,
    parse_kv_args,
)
from .train import (
    CONFIG_VERSION,
    MIGRATIONS,
    TrainConfig,
    dataset_from_kohya,
    dataset_to_kohya,
    is_kohya_dataset_config,
    migrate,
)

__all__ = [
    "CONFIG_VERSION",
    "DATASET_DEFAULTS",
    "MIGRATIONS",
    "NETWORK_MODULES",
    "NETWORK_TYPES",
    "OPTIMIZER_CLASS_NAMES",
    "OPTIMIZER_TYPES",
    "SCHEDULERS",
    "SUBSET_DEFAULTS",
    "ConfigError",
    "DatasetBlock",
    "DatasetGeneral",
    "DatasetSection",
    "LoggingSection",
    "ModelSection",
    "NetworkSection",
    "OptimizerSection",
    "ResolvedSubset",
    "SamplingSection",
    "SavingSection",
    "Subset",
    "TrainConfig",
    "TrainingSection",
    "add_arguments",
    "base_model_version",
    "dataset_from_kohya",
    "dataset_to_kohya",
    "fields",
    "from_args",
    "from_flat",
    "is_kohya_dataset_config",
    "list_presets",
    "load_preset",
    "migrate",
    "network_args",
    "parse_kv_args",
    "preset_path",
    "to_flat",
    "to_ss_metadata",
]
