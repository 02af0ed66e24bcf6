"""The training items of a config: subsets resolved, images found, captions read, buckets chosen.

kohya's ``DreamBoothDataset`` + ``BucketManager`` (SD:library/train_util.py), as a plan made once
before training: every image with its caption, repeats, bucket, mask source and loss weight, plus
what was skipped and why. Regularization images get kohya's round-robin repeats so the reg count
(with repeats) reaches the training count. Batching is in :mod:`.batching`.
No torch here; Pillow reads image headers only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ConfigError, DatasetBlock, ResolvedSubset, Subset, TrainConfig
from . import checks, folders, pixels
from .buckets import BucketChoice, BucketManager, BucketSettings
from .captions import CaptionError, CaptionOptions, read_caption

MISSING_CAPTION_POLICIES = ("class_tokens", "error", "skip")
BAD_IMAGE_POLICIES = ("error", "skip")


class DataError(ValueError):
    """The dataset cannot be trained as configured; the message says which files and what to do."""


@dataclass(frozen=True)
class TrainItem:
    """One image as the trainer sees it (repeats are a count, not copies).

    Attributes:
        image: the image file.
        caption: the raw caption (first line; every line when wildcards are on).
        subset: index into :attr:`DatasetPlan.subsets`.
        dataset: index of its ``[[datasets]]`` block (batches never mix datasets).
        num_repeats: times it is seen per epoch (reg images: after kohya's balancing).
        is_reg: a regularization image (loss weighted by ``prior_loss_weight``).
        loss_weight: the per-sample loss weight.
        choice: bucket, resized size and crop box (``buckets.BucketChoice``).
        mask: a mask image from ``conditioning_data_dir``, if any.
        alpha_mask: use the image's alpha channel as mask.
        flip_aug: random horizontal flips.
        random_crop: crop the resize's excess at a random offset each step (latents not cached).
        color_aug: kohya's random hue shift / gamma each step (latents not cached).
    """

    image: Path
    caption: str
    subset: int
    dataset: int
    num_repeats: int
    is_reg: bool
    loss_weight: float
    choice: BucketChoice
    mask: Path | None = None
    alpha_mask: bool = False
    flip_aug: bool = False
    random_crop: bool = False
    color_aug: bool = False

    @property
    def bucket(self) -> tuple[int, int]:
        return self.choice.bucket


@dataclass
class DatasetPlan:
    """Everything known about the data before training starts.

    Attributes:
        items: the usable images.
        subsets: the resolved subsets (items point here by index).
        datasets: per dataset, its resolved dataset-level values (``batch_size`` filled in).
        skipped: ``(path, reason)`` for every image left out.
        excluded: ``(folder, reason)`` for every folder of the training root not trained.
        warnings: sentences for the log and the UI.
        architecture: the model family the buckets were made for.
    """

    items: list[TrainItem]
    subsets: list[ResolvedSubset]
    datasets: list[dict[str, Any]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    excluded: list[tuple[Path, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    architecture: str = "sd1"

    def report(self) -> list[str]:
        """What was left out, as log lines (printed before the first step; empty when nothing was)."""
        return checks.report_lines(self.skipped, self.excluded)

    @property
    def num_train_images(self) -> int:
        """Training images times repeats: kohya's ``num_train_images`` (images seen per epoch)."""
        return sum(i.num_repeats for i in self.items if not i.is_reg)

    @property
    def num_reg_images(self) -> int:
        """Regularization images times repeats."""
        return sum(i.num_repeats for i in self.items if i.is_reg)

    def caption_options(self, item: TrainItem) -> CaptionOptions:
        """The caption options of an item's subset."""
        return CaptionOptions.from_values(self.subsets[item.subset].values)


def subsets_from_folders(train_data_dir: str | None, reg_data_dir: str | None) -> DatasetBlock:
    """kohya folder mode: one subset per ``N_name`` folder (N repeats, class tokens ``name``).

    Folders without a repeat count are skipped, as kohya does; :func:`build_plan` reports them. A
    training folder's masks (the Dataset tab's ``masks/``, found by :func:`folders.mask_folder_for`, the
    rule the scan checks masks by) become its ``conditioning_data_dir``, used under ``training.masked_loss``.
    """
    subsets = []
    for root, is_reg in ((train_data_dir, False), (reg_data_dir, True)):
        if not root:
            continue
        if not os.path.isdir(root):
            field_name = "dataset.reg_data_dir" if is_reg else "dataset.train_data_dir"
            raise ConfigError(field_name, f"{root} is not a folder")
        for entry in sorted(os.scandir(root), key=lambda e: e.name):
            if not entry.is_dir() or folders.is_skipped_dir(entry.name):
                continue
            repeats, name = folders.parse_concept_folder(entry.name)
            if repeats is None:
                continue
            masks = None if is_reg else folders.mask_folder_for(root, entry.name)
            subsets.append(Subset(image_dir=entry.path, num_repeats=repeats, class_tokens=name, is_reg=is_reg,
                                  conditioning_data_dir=str(masks) if masks else None))
    return DatasetBlock(subsets=subsets)


def _bucket_settings(ds: dict[str, Any], architecture: str) -> BucketSettings:
    res = ds["resolution"]
    resolution = (res, res) if isinstance(res, int) else (res[0], res[1])
    step = ds["bucket_reso_steps"]
    multiple = 32 if architecture == "sdxl" else 64
    if ds["enable_bucket"] and step % multiple:
        raise ConfigError(
            "dataset.bucket_reso_steps", f"must be a multiple of {multiple} for {architecture}, got {step}"
        )
    settings = BucketSettings(
        resolution=resolution,
        min_reso=ds["min_bucket_reso"],
        max_reso=ds["max_bucket_reso"],
        step=step,
        no_upscale=ds["bucket_no_upscale"],
        enable=ds["enable_bucket"],
    )
    if settings.enable and not settings.no_upscale:
        try:
            settings.snapped()
        except ValueError as exc:
            raise ConfigError("dataset.min_bucket_reso", str(exc)) from None
    return settings


def _balance_reg(train: list[dict], reg: list[dict]) -> list[dict]:
    """kohya's reg balancing: register reg images round-robin, adding one repeat per pass after the
    first, until reg images × repeats ≥ training images × repeats (SD:train_util DreamBoothDataset)."""
    target = sum(r["num_repeats"] for r in train)
    if not reg or target == 0:
        return []
    chosen: list[dict] = []
    n = 0
    first = True
    while n < target:
        for info in reg:
            if first:
                chosen.append(info)
                n += info["num_repeats"]
            else:
                info["num_repeats"] += 1
                n += 1
            if n >= target:
                break
        first = False
    return chosen


def build_plan(
    config: TrainConfig,
    architecture: str = "sd1",
    *,
    missing_captions: str = "class_tokens",
    bad_images: str | None = None,
) -> DatasetPlan:
    """Find every training image of ``config`` and decide what the trainer does with it.

    Nothing is decoded except what a check needs (mask pixels; every image under ``skip_bad_images``),
    so this preflight is fast and stops before any caching with every cause at once.

    Args:
        config (`TrainConfig`): the run's config (folder mode or ``[[datasets]]``).
        architecture (`str`, *optional*): ``"sd1"``, ``"sd2"`` or ``"sdxl"`` (bucket step rules).
        missing_captions (`str`, *optional*): an image without a caption file gets the subset's
            class tokens or "" (kohya, ``"class_tokens"``), stops the run (``"error"``) or is left out (``"skip"``).
        bad_images (`str`, *optional*): an image that cannot be read (header, or the file ends early)
            stops the run (``"error"``) or is left out with its reason (``"skip"``, which also decodes
            every image here); default from ``training.skip_bad_images``.

    Returns:
        `DatasetPlan`: the items, what was skipped and why, and warnings.

    Raises:
        DataError: no training image left (with every reason), a bad image / missing caption under the
            ``"error"`` policies, or captions holding ``|||`` that another separator would train as text.
        ConfigError: a setting that cannot work (bad bucket step, missing folder).
    """
    if bad_images is None:
        bad_images = "skip" if config.training.skip_bad_images else "error"
    if missing_captions not in MISSING_CAPTION_POLICIES:
        raise ValueError(f"missing_captions must be one of {MISSING_CAPTION_POLICIES}")
    if bad_images not in BAD_IMAGE_POLICIES:
        raise ValueError(f"bad_images must be one of {BAD_IMAGE_POLICIES}")
    ds_cfg = config.dataset
    if ds_cfg.folder_mode:
        block = subsets_from_folders(ds_cfg.train_data_dir, ds_cfg.reg_data_dir)
        resolved = ds_cfg.resolve_blocks([block])
    else:
        resolved = ds_cfg.resolve_blocks()

    plan = DatasetPlan(items=[], subsets=[], datasets=[], architecture=architecture)
    if ds_cfg.folder_mode:
        plan.excluded = checks.excluded_folders(ds_cfg.train_data_dir) + checks.excluded_folders(ds_cfg.reg_data_dir)
    state = _Preflight(config.training.masked_loss, decode=bad_images == "skip")  # skipping: nothing fails later
    state.masks_somewhere = state.masked_loss and any(
        s.conditioning_data_dir and not s.is_reg for _, subs in resolved for s in subs)
    for ds_index, (ds_values, subsets) in enumerate(resolved):
        ds_values = dict(ds_values)
        if ds_values["batch_size"] is None:
            ds_values["batch_size"] = config.training.batch_size
        plan.datasets.append(ds_values)
        manager = BucketManager(_bucket_settings(ds_values, architecture))
        train_infos: list[dict] = []
        reg_infos: list[dict] = []
        for subset in subsets:
            sub_index = len(plan.subsets)
            plan.subsets.append(subset)
            infos = _subset_infos(subset, sub_index, ds_index, missing_captions, plan, state)
            (reg_infos if subset.is_reg else train_infos).extend(infos)
        if reg_infos and not train_infos:
            plan.warnings.append(f"dataset {ds_index}: regularization images but no training images")
        for info in train_infos + _balance_reg(train_infos, reg_infos):
            choice = manager.choose(*info["size"])
            if choice.problem:
                plan.skipped.append((info["image"], choice.problem))
                continue
            subset = plan.subsets[info["subset"]]
            plan.items.append(
                TrainItem(
                    image=info["image"],
                    caption=info["caption"],
                    subset=info["subset"],
                    dataset=ds_index,
                    num_repeats=info["num_repeats"],
                    is_reg=subset.is_reg,
                    loss_weight=config.training.prior_loss_weight if subset.is_reg else 1.0,
                    choice=choice,
                    mask=info["mask"],
                    alpha_mask=bool(subset.alpha_mask),
                    flip_aug=bool(subset.flip_aug),
                    random_crop=bool(subset.random_crop),
                    color_aug=bool(subset.color_aug),
                )
            )
    if config.training.masked_loss and not state.any_mask_source:
        plan.warnings.append("training.masked_loss is on, but there are no masks (a masks/ folder in folder mode, "
                             "conditioning_data_dir in a [[datasets]] subset) and no alpha_mask: every image trains "
                             "unmasked")
    _raise_if_unusable(plan, state, ds_cfg, bad_images, missing_captions)
    return plan


class _Preflight:
    """What the per-image checks collect across subsets (problems are raised together at the end)."""

    def __init__(self, masked_loss: bool, decode: bool) -> None:
        self.masked_loss = masked_loss
        self.decode = decode
        self.any_mask_source = False
        self.masks_somewhere = False  # a training subset has a mask folder: one without is left out
        self.broken: list[str] = []
        self.uncaptioned: list[str] = []
        self.separators: list[str] = []


def _subset_infos(subset: ResolvedSubset, sub_index: int, ds_index: int, missing: str, plan: DatasetPlan,
                  state: _Preflight) -> list[dict]:
    """The usable images of one subset (what is not usable goes to ``plan.skipped`` / ``state``)."""
    if not subset.image_dir:
        plan.warnings.append(f"subset {sub_index}: metadata_file subsets are not supported yet; skipped")
        return []
    if getattr(subset, "face_crop_aug_range", None):
        plan.warnings.append(f"{subset.image_dir}: face_crop_aug_range is not applied by LoRA Bakery (kohya uses it "
                             "only without buckets, with face positions in the file names); images are cropped "
                             "as usual")
    if not os.path.isdir(subset.image_dir):
        raise ConfigError(f"dataset subset {sub_index}.image_dir", f"{subset.image_dir} is not a folder")
    masks = subset.conditioning_data_dir if state.masked_loss else None
    state.any_mask_source |= bool(masks or subset.alpha_mask)
    images = folders.list_images(subset.image_dir)
    if not images:
        plan.warnings.append(f"{subset.image_dir}: no images")
    if state.masks_somewhere and not (masks or subset.alpha_mask or subset.is_reg):
        reason = "no mask folder for its folder (other folders have masks; masked loss)"  # as the scan's mask-none
        plan.skipped.extend((image, reason) for image in images)
        return []
    infos = []
    for image in images:
        info = _image_info(image, subset, sub_index, ds_index, missing, plan, state, masks)
        if info is not None:
            infos.append(info)
    texts = [" ".join(filter(None, (subset.caption_prefix, i["caption"], subset.caption_suffix))) for i in infos]
    problem = checks.separator_problem(subset.image_dir, subset.keep_tokens_separator, texts)
    if problem:
        state.separators.append(problem)
    return infos


def _image_info(image: Path, subset: ResolvedSubset, sub_index: int, ds_index: int, missing: str,
                plan: DatasetPlan, state: _Preflight, masks: str | None) -> dict | None:
    size, reason = pixels.check_file(image, decode=state.decode)
    if reason is not None:
        plan.skipped.append((image, reason))
        state.broken.append(f"{image}: {reason}")
        return None
    try:
        caption = read_caption(image, subset.caption_extension, enable_wildcard=bool(subset.enable_wildcard))
    except CaptionError as exc:
        plan.skipped.append((image, str(exc)))
        state.broken.append(str(exc))
        return None
    if caption is None:
        state.uncaptioned.append(str(image))
        if missing == "skip":
            plan.skipped.append((image, f"no caption file ({subset.caption_extension})"))
            return None
        caption = subset.class_tokens or ""
    mask = None
    if masks:
        mask = folders.find_mask(masks, image)
        problem = f"no mask with the same name in {masks} (masked loss)" if mask is None else checks.mask_problem(mask)
    elif subset.alpha_mask:
        problem = checks.alpha_problem(image)
    else:
        problem = None
    if problem:
        plan.skipped.append((image, problem))
        return None
    return {
        "image": image,
        "size": size,
        "caption": caption,
        "subset": sub_index,
        "dataset": ds_index,
        "num_repeats": subset.num_repeats,
        "mask": mask,
    }


def _raise_if_unusable(plan: DatasetPlan, state: _Preflight, ds_cfg: Any, bad_images: str, missing: str) -> None:
    """Stop with every cause at once: bad images, missing captions, separators, or nothing left to train."""
    if state.broken and bad_images == "error":
        raise DataError(
            "images the trainer cannot read (fix or remove them, or leave them out with training.skip_bad_images: "
            "bakery train --skip-bad-images, or the Bake tab's General group):\n" + "\n".join(state.broken)
        )
    if state.uncaptioned and missing == "error":
        raise DataError("images without a caption file:\n" + "\n".join(state.uncaptioned))
    if state.separators:
        raise DataError("\n".join(state.separators))
    if not any(not i.is_reg for i in plan.items):
        where = ds_cfg.train_data_dir or ", ".join(s.image_dir for s in plan.subsets) or "(no folders)"
        hint = ""
        if ds_cfg.folder_mode and not any(not s.is_reg for s in plan.subsets):
            hint = " Folder mode needs subfolders named N_name, e.g. 10_mychar."
        what = "no training images left" if plan.skipped else "no training images found"
        why = plan.report() + plan.warnings
        raise DataError(f"{what} in {where}.{hint}" + "".join(f"\n{w}" for w in why))
