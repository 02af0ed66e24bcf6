"""The dataset part of the config: kohya's dataset-config TOML, key for key, plus plain folder mode.

kohya sd-scripts reads ``[general]`` → ``[[datasets]]`` → ``[[datasets.subsets]]`` and resolves every
value subset → dataset → general → command-line default (SD:library/config_util.py). The sections
here keep that structure unchanged: every inheritable key defaults to ``None`` ("not set here"),
so a kohya file reads in and writes back the same, and :meth:`DatasetSection.resolve` applies the
fallback chain once, giving flat :class:`ResolvedSubset` records the data pipeline uses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .fields import Section, opt

# The command-line defaults kohya falls back to, except where the community default differs
# (caption extension ".txt", buckets on) or add-triggers' separator ("|||"): reference/kohya-trainer.md §4, §8.
DATASET_DEFAULTS: dict[str, Any] = {
    "resolution": 512,
    "batch_size": None,  # falls back to training.batch_size
    "enable_bucket": True,
    "min_bucket_reso": 256,
    "max_bucket_reso": 1024,
    "bucket_reso_steps": 64,
    "bucket_no_upscale": False,
    "network_multiplier": 1.0,
    "validation_seed": None,
    "validation_split": 0.0,
    "resize_interpolation": None,
}

SUBSET_DEFAULTS: dict[str, Any] = {
    "num_repeats": 1,
    "shuffle_caption": False,
    "caption_separator": ",",
    "keep_tokens": 0,
    "keep_tokens_separator": "|||",  # kohya: ""; ours is what add-triggers writes (see captions.py)
    "secondary_separator": None,
    "enable_wildcard": False,
    "color_aug": False,
    "flip_aug": False,
    "face_crop_aug_range": None,
    "random_crop": False,
    "token_warmup_min": 1,
    "token_warmup_step": 0.0,
    "caption_prefix": None,
    "caption_suffix": None,
    "custom_attributes": None,
    "caption_dropout_rate": 0.0,
    "caption_dropout_every_n_epochs": 0,
    "caption_tag_dropout_rate": 0.0,
    "is_reg": False,
    "alpha_mask": False,
    "class_tokens": None,
    "caption_extension": ".txt",
    "cache_info": False,
}

INTERPOLATIONS = ("lanczos", "nearest", "bilinear", "linear", "bicubic", "cubic", "area", "box")


@dataclass
class DatasetKeys(Section):
    """Keys kohya allows at dataset level (and in ``[general]``). ``None`` = inherit."""

    resolution: int | list[int] | None = opt(
        None, "Training resolution: one number (square) or [width, height]. Default 512.", group="Buckets"
    )
    batch_size: int | None = opt(
        None, "Images per batch for this dataset. Default: training.batch_size.", group="General", min=1
    )
    enable_bucket: bool | None = opt(
        None, "Aspect-ratio buckets instead of square crops. Default on.", group="Buckets"
    )
    min_bucket_reso: int | None = opt(
        None, "Smallest bucket side in pixels. Default 256.", group="Buckets", min=64
    )
    max_bucket_reso: int | None = opt(
        None, "Largest bucket side in pixels. Default 1024.", group="Buckets", min=64
    )
    bucket_reso_steps: int | None = opt(
        None,
        "Bucket side granularity (64 for SD1/2, a multiple of 32 for SDXL). Default 64.",
        group="Buckets",
        min=8,
    )
    bucket_no_upscale: bool | None = opt(
        None,
        "Never upscale: the bucket is the image size floored to the step (min/max ignored).",
        group="Buckets",
    )
    network_multiplier: float | None = opt(
        None, "LoRA multiplier used for this dataset. Default 1.", group="General"
    )
    validation_seed: int | None = opt(None, "Seed of the validation split.", group="General")
    validation_split: float | None = opt(
        None, "Fraction of images held out for validation (0 = none).", group="General", min=0.0, below=1.0
    )
    resize_interpolation: str | None = opt(
        None,
        "Resize filter; default area when shrinking, lanczos when enlarging.",
        group="Buckets",
        choices=INTERPOLATIONS,
    )

    def check(self) -> None:
        if isinstance(self.resolution, list):
            if len(self.resolution) != 2:
                raise ConfigError("resolution", "give one number or [width, height]")
            values = self.resolution
        else:
            values = [self.resolution] if self.resolution is not None else []
        for v in values:
            if v < 64:
                raise ConfigError("resolution", f"must be at least 64 pixels, got {v}")
        lo, hi = self.min_bucket_reso, self.max_bucket_reso
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError("min_bucket_reso", f"{lo} is above max_bucket_reso {hi}")


@dataclass
class SubsetKeys(Section):
    """Keys kohya allows at subset level, and as defaults at dataset level and in ``[general]``."""

    num_repeats: int | None = opt(
        None, "Times each image is seen per epoch. Default 1.", group="Data subsets", min=1
    )
    shuffle_caption: bool | None = opt(None, "Shuffle the caption's tags each time.", group="Data subsets")
    caption_separator: str | None = opt(None, 'Tag separator. Default ",".', group="Data subsets")
    keep_tokens: int | None = opt(
        None, "Number of leading tags kept in place under shuffle and dropout.", group="Data subsets", min=0
    )
    keep_tokens_separator: str | None = opt(
        None,
        'Text left of this stays fixed; a second one starts a fixed suffix. Default "|||" (what add-triggers '
        'writes); it never reaches the text encoder. "" turns it off and refuses captions holding "|||".',
        group="Data subsets",
    )
    secondary_separator: str | None = opt(
        None,
        'Joins tags that move and drop as one (e.g. ";;;"), replaced by the separator.',
        group="Data subsets",
    )
    enable_wildcard: bool | None = opt(
        None, "Pick a random caption line and resolve {a|b} choices.", group="Data subsets"
    )
    color_aug: bool | None = opt(
        None, "Random hue/gamma change, kohya's (needs training.cache_latents off).", group="Data subsets"
    )
    flip_aug: bool | None = opt(None, "Random horizontal flip (both flips are cached).", group="Data subsets")
    face_crop_aug_range: list[float] | None = opt(
        None, "Face crop scale range [min, max], only without buckets.", group="Data subsets", min=0.0
    )
    random_crop: bool | None = opt(
        None, "Random instead of centre crop (needs training.cache_latents off).", group="Data subsets"
    )
    token_warmup_min: int | None = opt(
        None, "Tags used at step 0 of the token warmup. Default 1.", group="Data subsets", min=0
    )
    token_warmup_step: float | None = opt(
        None,
        "Step at which all tags are used (below 1: fraction of all steps). 0 = off.",
        group="Data subsets",
        min=0.0,
    )
    caption_prefix: str | None = opt(
        None, "Text put before every caption (e.g. the trigger).", group="Data subsets"
    )
    caption_suffix: str | None = opt(None, "Text put after every caption.", group="Data subsets")
    custom_attributes: dict[str, Any] | None = opt(
        None, "Free-form attributes (kept for kohya files).", group="Data subsets"
    )
    caption_dropout_rate: float | None = opt(
        None, "Chance of training an image with an empty caption.", group="Data subsets", min=0.0, max=1.0
    )
    caption_dropout_every_n_epochs: int | None = opt(
        None, "Drop all captions every N-th epoch (0 = never).", group="Data subsets", min=0
    )
    caption_tag_dropout_rate: float | None = opt(
        None, "Chance of dropping each non-fixed tag.", group="Data subsets", min=0.0, max=1.0
    )
    is_reg: bool | None = opt(
        None, "Regularization images (loss weighted by prior_loss_weight).", group="Data subsets"
    )
    alpha_mask: bool | None = opt(
        None, "Use the image's alpha channel as the loss mask.", group="Data subsets"
    )
    class_tokens: str | None = opt(None, "Caption for images without a caption file.", group="Data subsets")
    caption_extension: str | None = opt(None, 'Caption file extension. Default ".txt".', group="Data subsets")
    cache_info: bool | None = opt(
        None, "Cache image sizes and captions (kohya option; accepted).", group="Data subsets"
    )

    def check(self) -> None:
        if self.face_crop_aug_range is not None and len(self.face_crop_aug_range) != 2:
            raise ConfigError("face_crop_aug_range", "give [min, max]")
        ext = self.caption_extension
        if ext is not None and ext and not ext.startswith("."):
            raise ConfigError("caption_extension", f'must start with ".", e.g. ".{ext}"')
        if self.caption_separator == "":
            raise ConfigError("caption_separator", "must not be empty")


@dataclass
class DatasetGeneral(DatasetKeys, SubsetKeys):
    """``[general]``: defaults for every dataset and subset."""

    def check(self) -> None:
        DatasetKeys.check(self)
        SubsetKeys.check(self)


@dataclass
class Subset(SubsetKeys):
    """``[[datasets.subsets]]``: one folder of images (or a fine-tune metadata file)."""

    image_dir: str | None = opt(
        None, "Folder of images (required for DreamBooth-style subsets).", group="Data subsets"
    )
    metadata_file: str | None = opt(
        None, "Fine-tune metadata JSON (kohya; accepted, not trained yet).", group="Data subsets"
    )
    conditioning_data_dir: str | None = opt(
        None, "Folder of mask images with the same names (masked loss).", group="Data subsets"
    )

    def check(self) -> None:
        super().check()
        if not self.image_dir and not self.metadata_file:
            raise ConfigError("image_dir", "each subset needs an image_dir")


@dataclass
class DatasetBlock(DatasetKeys, SubsetKeys):
    """``[[datasets]]``: dataset-level keys, subset defaults, and its subsets."""

    subsets: list[Subset] = opt([], "The image folders of this dataset.")

    def check(self) -> None:
        DatasetKeys.check(self)
        SubsetKeys.check(self)


@dataclass(frozen=True)
class ResolvedSubset:
    """One subset with every value decided (subset → dataset → general → default).

    ``dataset`` is the index of its ``[[datasets]]`` block; batches never mix datasets because
    each dataset has its own resolution and batch size (kohya trains them as a group).
    """

    dataset: int
    image_dir: str
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["values"][name]
        except KeyError:
            raise AttributeError(name) from None


@dataclass
class DatasetSection(Section):
    """The ``dataset`` table of our config file.

    Either kohya-style ``datasets`` blocks, or folder mode (``train_data_dir`` holding ``N_name``
    folders, and optionally ``reg_data_dir``), with ``general`` supplying defaults in both.
    """

    train_data_dir: str | None = opt(
        None,
        "Folder mode: the parent of N_name image folders (N = repeats, name = class tokens).",
        group="General",
    )
    reg_data_dir: str | None = opt(
        None, "Folder mode: the parent of N_name regularization folders.", group="General"
    )
    general: DatasetGeneral = opt(DatasetGeneral, "Defaults for every dataset and subset ([general]).")
    datasets: list[DatasetBlock] = opt([], "kohya-style datasets ([[datasets]]).")

    def check(self) -> None:
        if self.datasets and (self.train_data_dir or self.reg_data_dir):
            raise ConfigError(
                "train_data_dir", "use either folder mode (train_data_dir) or [[datasets]] blocks, not both"
            )

    @property
    def folder_mode(self) -> bool:
        """True when the images come from ``train_data_dir`` / ``reg_data_dir``."""
        return not self.datasets

    def resolve_blocks(
        self, blocks: list[DatasetBlock] | None = None
    ) -> list[tuple[dict[str, Any], list[ResolvedSubset]]]:
        """Apply kohya's fallback chain.

        Args:
            blocks (`list[DatasetBlock]`, *optional*): the blocks to resolve; defaults to
                ``self.datasets``. Folder mode passes one block built from the scanned folders.

        Returns:
            `list[tuple[dict, list[ResolvedSubset]]]`: per dataset, its dataset-level values and subsets.
        """
        out = []
        for index, block in enumerate(self.datasets if blocks is None else blocks):
            ds_values = {}
            for key, default in DATASET_DEFAULTS.items():
                ds_values[key] = _first_set(key, (block, self.general), default)
            subsets = []
            for subset in block.subsets:
                values = {
                    key: _first_set(key, (subset, block, self.general), default)
                    for key, default in SUBSET_DEFAULTS.items()
                }
                values["conditioning_data_dir"] = subset.conditioning_data_dir
                values["metadata_file"] = subset.metadata_file
                subsets.append(ResolvedSubset(index, subset.image_dir or "", values))
            out.append((ds_values, subsets))
        return out


def _first_set(key: str, sources: tuple[Section, ...], default: Any) -> Any:
    for source in sources:
        value = getattr(source, key, None)
        if value is not None:
            return value
    return default


def dataset_field_names() -> set[str]:
    """Every key any level of a kohya dataset config may hold (for importing kohya files)."""
    names = {f.name for f in dataclasses.fields(DatasetGeneral)}
    names |= {f.name for f in dataclasses.fields(Subset)}
    return names
