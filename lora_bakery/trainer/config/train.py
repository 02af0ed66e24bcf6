"""``TrainConfig``: the root of the config tree, its version and migrations, and file I/O.

The same tree is the UI form (:mod:`.flat`), the CLI (:mod:`.flat` argparse helpers), the TOML file
(here) and the ``ss_*`` metadata (:mod:`.metadata`). Old files keep loading: every change of a
field's name or meaning bumps :data:`CONFIG_VERSION` and adds one migration to :data:`MIGRATIONS`
(the OneTrainer ``config_version`` pattern, STYLE.md §4).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import toml_io
from .dataset import DatasetSection, dataset_field_names
from .errors import ConfigError
from .fields import Section, opt
from .sections import (
    LoggingSection,
    ModelSection,
    NetworkSection,
    OptimizerSection,
    SamplingSection,
    SavingSection,
    TrainingSection,
)

CONFIG_VERSION = 1

# MIGRATIONS[n] turns a version-n dict into a version-(n+1) dict. Version 1 is the first release,
# so the table is empty; the mechanism is exercised by the tests with their own table.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

_INLINE = frozenset({"custom_attributes"})


def migrate(
    data: dict[str, Any],
    migrations: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] | None = None,
    current: int = CONFIG_VERSION,
) -> dict[str, Any]:
    """Bring a config dict from its ``version`` up to ``current``.

    Args:
        data (`dict`): the parsed file; a missing ``version`` means the current one (hand-written).
        migrations (`dict`, *optional*): version → step function; defaults to :data:`MIGRATIONS`.
        current (`int`, *optional*): the target version.

    Returns:
        `dict`: a new dict at version ``current``.
    """
    table = MIGRATIONS if migrations is None else migrations
    data = copy.deepcopy(data)
    version = data.get("version", current)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ConfigError("version", f"must be a positive integer, got {version!r}")
    if version > current:
        raise ConfigError(
            "version",
            f"this file is version {version}, newer than this LoRA Bakery understands ({current}); update it",
        )
    while version < current:
        step = table.get(version)
        if step is None:
            raise ConfigError("version", f"no migration from version {version}")
        data = step(data)
        version += 1
        data["version"] = version
    data["version"] = current
    return data


@dataclass
class TrainConfig(Section):
    """Everything one training run needs.

    Build it from a dict/TOML (:meth:`from_dict`, :meth:`from_toml`), from the UI's flat values
    (:func:`.flat.from_flat`) or from argparse (:func:`.flat.from_args`); every route validates in
    ``__post_init__`` and a bad value raises :class:`ConfigError` naming the field.
    """

    version: int = opt(CONFIG_VERSION, "Config file format version.", min=1)
    model: ModelSection = opt(ModelSection, "Model.")
    dataset: DatasetSection = opt(DatasetSection, "Images and captions.")
    network: NetworkSection = opt(NetworkSection, "Adapter.")
    optimizer: OptimizerSection = opt(OptimizerSection, "Optimizer and schedule.")
    training: TrainingSection = opt(TrainingSection, "Training loop.")
    saving: SavingSection = opt(SavingSection, "Output files.")
    sampling: SamplingSection = opt(SamplingSection, "Sample images.")
    logging: LoggingSection = opt(LoggingSection, "Logs.")

    def check(self) -> None:
        if self.version != CONFIG_VERSION:
            raise ConfigError(
                "version", f"expected {CONFIG_VERSION}; load files through from_dict to migrate"
            )
        if self.optimizer.type in ("prodigy", "dadaptadam") and self.network.scale_weight_norms is not None:
            raise ConfigError("network.scale_weight_norms", "do not combine with Prodigy/DAdapt (recipes)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a parsed file, migrating old versions first."""
        return super().from_dict(migrate(data))

    # ----------------------------------------------------------------- TOML

    def to_toml(self) -> str:
        """The config as TOML text that :meth:`from_toml` (and ``bakery train``) read back unchanged."""
        header = "LoRA Bakery training config. Run with: bakery train THIS_FILE.toml"
        return toml_io.dumps(self.to_dict(), header=header, inline_dicts=_INLINE)

    @classmethod
    def from_toml(cls, text: str, source: str = "") -> TrainConfig:
        """Parse TOML text (our format). A bare kohya dataset config is recognised and read too."""
        data = toml_io.loads(text, source)
        if is_kohya_dataset_config(data):
            return cls(dataset=dataset_from_kohya(data))
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a config file; errors name the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError("", f"{path} is not UTF-8 text") from None
        return cls.from_toml(text, str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_toml` atomically."""
        return toml_io.write_atomic(path, self.to_toml())

    # ------------------------------------------------------------ readiness

    def check_ready(self) -> None:
        """Rules that only hold for a config about to train (the UI builds configs up gradually).

        Raises:
            ConfigError: no images configured, or no output folder.
        """
        ds = self.dataset
        if ds.folder_mode and not ds.train_data_dir:
            raise ConfigError(
                "dataset.train_data_dir", "no images: set a training folder or add [[datasets]]"
            )
        if not ds.folder_mode and not any(block.subsets for block in ds.datasets):
            raise ConfigError("dataset.datasets", "no images: every [[datasets]] block is empty")
        if not self.saving.output_dir:
            raise ConfigError("saving.output_dir", "choose a folder for the LoRA files")
        if (self.training.cache_latents or self.training.cache_latents_to_disk) and _augments(ds):
            raise ConfigError(
                "training.cache_latents",
                "cannot cache latents with color_aug or random_crop (kohya refuses too): set "
                "training.cache_latents and training.cache_latents_to_disk to false to use them "
                "(latents are then encoded every step)",
            )

    def warnings(self) -> list[str]:
        """Legal but probably unintended settings, as sentences for the log and the UI."""
        out = []
        opt_ = self.optimizer
        if opt_.type in ("prodigy", "dadaptadam") and opt_.lr <= 0.1:
            out.append(f"optimizer.lr is {opt_.lr}: Prodigy/DAdapt expect about 1.")
        if opt_.type == "adamw" and opt_.lr > 1e-2:
            out.append(f"optimizer.lr is {opt_.lr}: AdamW usually trains LoRAs at 1e-4.")
        net = self.network
        if net.conv_dim is not None and net.conv_dim > 64:
            out.append("network.conv_dim above 64 tends to burn (recipes: never above 64/32).")
        if net.alpha > net.dim and net.type not in ("ia3", "oft"):
            out.append(f"network.alpha {net.alpha} is above dim {net.dim}: the effective scale is above 1.")
        return out


def _augments(ds: DatasetSection) -> bool:
    sections: list[Any] = [ds.general, *ds.datasets]
    for block in ds.datasets:
        sections.extend(block.subsets)
    return any(getattr(s, "color_aug", None) or getattr(s, "random_crop", None) for s in sections)


# ----------------------------------------------------------- kohya dataset config


def is_kohya_dataset_config(data: dict[str, Any]) -> bool:
    """True for a kohya ``--dataset_config`` file (top level ``general`` / ``datasets`` only)."""
    return bool(data) and set(data) <= {"general", "datasets"}


def dataset_from_kohya(data: dict[str, Any]) -> DatasetSection:
    """Read a kohya dataset-config dict (``[general]``, ``[[datasets]]``, ``[[datasets.subsets]]``).

    Keys are kept as kohya names them; unknown keys raise :class:`ConfigError` naming them.
    """
    try:
        return DatasetSection.from_dict(
            {"general": data.get("general", {}), "datasets": data.get("datasets", [])}
        )
    except ConfigError as exc:
        raise exc.within("") from None


def dataset_to_kohya(section: DatasetSection) -> str:
    """A kohya dataset-config TOML for ``section`` (``[[datasets]]`` mode only)."""
    if section.folder_mode:
        raise ConfigError(
            "dataset.train_data_dir", "folder mode has no kohya dataset-config form; scan the folders first"
        )
    d = section.to_dict()
    data = {"general": d.get("general", {}), "datasets": d.get("datasets", [])}
    return toml_io.dumps(data, inline_dicts=_INLINE)


__all__ = [
    "CONFIG_VERSION",
    "MIGRATIONS",
    "TrainConfig",
    "dataset_field_names",
    "dataset_from_kohya",
    "dataset_to_kohya",
    "is_kohya_dataset_config",
    "migrate",
]
