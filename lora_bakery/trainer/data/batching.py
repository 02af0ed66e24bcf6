"""Batches from one bucket at a time, shuffled per epoch the way kohya does, plus the dataset's
``ss_*`` metadata (tag frequency, folders, buckets).

kohya (SD:library/train_util.py ``make_buckets`` / ``shuffle_buckets``): each bucket holds every
image once per repeat; batch indices are ``(bucket, batch_index)`` with ``ceil(len / batch_size)``
batches per bucket; at dataset creation and again each epoch ``random.seed(seed + epoch)`` shuffles
the batch list, then each bucket's contents. The shuffles accumulate from epoch to epoch, so the
order of epoch ``e`` is rebuilt here by replaying them, which makes a resumed run see the same batches.
Batches of several datasets (each with its own resolution and batch size) are then interleaved
with a seeded shuffle, as kohya's ``DataLoader(shuffle=True)`` over the dataset group does.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass

from .captions import tag_frequency
from .dataset import DatasetPlan


@dataclass(frozen=True)
class Batch:
    """Item indices (into ``plan.items``) that train together: same dataset, same bucket."""

    dataset: int
    bucket: tuple[int, int]
    items: tuple[int, ...]


class BucketBatcher:
    """kohya's per-bucket batching for a :class:`DatasetPlan`.

    Args:
        plan (`DatasetPlan`): the items.
        seed (`int`): ``training.seed``.
    """

    def __init__(self, plan: DatasetPlan, seed: int) -> None:
        self.plan = plan
        self.seed = seed
        # per dataset: sorted bucket resolutions and, per bucket, item indices repeated num_repeats times
        self._buckets: list[tuple[list[tuple[int, int]], list[list[int]]]] = []
        for ds_index in range(len(plan.datasets)):
            by_reso: dict[tuple[int, int], list[int]] = {}
            for index, item in enumerate(plan.items):
                if item.dataset == ds_index:
                    by_reso.setdefault(item.bucket, []).extend([index] * item.num_repeats)
            resos = sorted(by_reso)
            self._buckets.append((resos, [by_reso[r] for r in resos]))

    def batches_per_epoch(self) -> int:
        """Batches per epoch (kohya's ``len(train_dataloader)``)."""
        total = 0
        for ds_index, (_, buckets) in enumerate(self._buckets):
            bs = self.plan.datasets[ds_index]["batch_size"]
            total += sum(math.ceil(len(b) / bs) for b in buckets)
        return total

    def _dataset_batches(self, ds_index: int, epoch: int) -> list[Batch]:
        resos, buckets = self._buckets[ds_index]
        bs = self.plan.datasets[ds_index]["batch_size"]
        buckets = [list(b) for b in buckets]
        indices = [(b, i) for b, bucket in enumerate(buckets) for i in range(math.ceil(len(bucket) / bs))]
        # kohya shuffles at creation (current_epoch 0) and once per epoch after that (epochs count from 1)
        for e in range(0, epoch + 1):
            rng = random.Random(self.seed + e)
            rng.shuffle(indices)
            for bucket in buckets:
                rng.shuffle(bucket)
        return [Batch(ds_index, resos[b], tuple(buckets[b][i * bs : (i + 1) * bs])) for b, i in indices]

    def epoch(self, epoch: int) -> list[Batch]:
        """The batches of ``epoch`` (counted from 1, as kohya does), in training order."""
        if epoch < 1:
            raise ValueError(f"epochs count from 1, got {epoch}")
        out: list[Batch] = []
        for ds_index in range(len(self._buckets)):
            out.extend(self._dataset_batches(ds_index, epoch))
        if len(self._buckets) > 1:
            random.Random(f"{self.seed}-interleave-{epoch}").shuffle(out)
        return out

    def sample_rng(self, epoch: int, batch_index: int, position: int) -> random.Random:
        """The random source of one sample (caption ops, flip): fixed by seed, epoch and position."""
        return random.Random(f"{self.seed}-{epoch}-{batch_index}-{position}")

    def bucket_info(self, ds_index: int = 0) -> dict:
        """kohya's ``bucket_info``: ``{"buckets": {i: {"resolution": [w, h], "count": n}}, "mean_img_ar_error": e}``.

        Counts include repeats; the ar error is averaged over unique images.
        """
        resos, buckets = self._buckets[ds_index]
        info: dict = {"buckets": {}}
        for i, (reso, bucket) in enumerate(zip(resos, buckets)):
            if bucket:
                info["buckets"][i] = {"resolution": list(reso), "count": len(bucket)}
        errors = [abs(it.choice.ar_error) for it in self.plan.items if it.dataset == ds_index]
        info["mean_img_ar_error"] = sum(errors) / len(errors) if errors else 0.0
        return info


def _dir_key(seen: dict, name: str) -> str:
    key, n = name, 2
    while key in seen:
        key = f"{name} ({n})"
        n += 1
    return key


def dataset_ss_metadata(plan: DatasetPlan, batcher: BucketBatcher, *, folder_mode: bool,
                        total_batch_size: int | None = None) -> dict[str, str]:
    """The dataset-dependent ``ss_*`` keys kohya writes (reference/kohya-trainer.md §3), as strings.

    Args:
        plan (`DatasetPlan`): the items.
        batcher (`BucketBatcher`): for the bucket counts.
        folder_mode (`bool`): kohya's legacy keys (``ss_bucket_info``, ``ss_reg_dataset_dirs``, the
            per-subset options ``ss_flip_aug``, ``ss_shuffle_caption`` …) for ``train_data_dir`` runs;
            ``ss_datasets`` for dataset-config runs.
        total_batch_size (`int`, *optional*): batch size × processes × accumulation (kohya's
            ``ss_total_batch_size``, folder mode); default the batch size.

    Returns:
        `dict[str, str]`: ``ss_num_train_images``, ``ss_num_reg_images``, ``ss_num_batches_per_epoch``,
        ``ss_tag_frequency``, ``ss_dataset_dirs`` and the mode's own keys.
    """
    tag_freq: dict[str, dict[str, int]] = {}
    ds_tag_freq: dict[int, dict[str, dict[str, int]]] = {}  # ss_datasets: each dataset's own folders
    dirs: dict[str, dict[str, int]] = {}
    reg_dirs: dict[str, dict[str, int]] = {}
    for sub_index, subset in enumerate(plan.subsets):
        items = [it for it in plan.items if it.subset == sub_index]
        name = os.path.basename(os.path.normpath(subset.image_dir)) if subset.image_dir else ""
        entry = {"n_repeats": subset.num_repeats, "img_count": len(items)}
        if subset.is_reg:
            reg_dirs[_dir_key(reg_dirs, name)] = entry
            continue
        dirs[_dir_key(dirs, name)] = entry
        if name not in tag_freq:
            tag_freq[name] = tag_frequency([it.caption for it in items])
        ds_tag_freq.setdefault(subset.dataset, {}).setdefault(name, tag_freq[name])
    meta: dict[str, object] = {
        "ss_num_train_images": plan.num_train_images,
        "ss_num_reg_images": plan.num_reg_images,
        "ss_num_batches_per_epoch": batcher.batches_per_epoch(),
        "ss_tag_frequency": json.dumps(tag_freq),
        "ss_dataset_dirs": json.dumps(dirs),
    }
    if folder_mode:
        ds = plan.datasets[0]
        res = ds["resolution"]
        # folder subsets all inherit [general]: kohya writes these from its command-line arguments
        first = plan.subsets[0].values if plan.subsets else {}
        meta.update(
            {
                "ss_batch_size_per_device": ds["batch_size"],
                "ss_total_batch_size": total_batch_size or ds["batch_size"],
                "ss_resolution": str((res, res) if isinstance(res, int) else tuple(res)),
                "ss_color_aug": bool(first.get("color_aug")),
                "ss_flip_aug": bool(first.get("flip_aug")),
                "ss_random_crop": bool(first.get("random_crop")),
                "ss_shuffle_caption": bool(first.get("shuffle_caption")),
                "ss_keep_tokens": first.get("keep_tokens", 0),
                "ss_keep_tokens_separator": first.get("keep_tokens_separator", ""),
                "ss_enable_bucket": bool(ds["enable_bucket"]),
                "ss_bucket_no_upscale": bool(ds["bucket_no_upscale"]),
                "ss_min_bucket_reso": ds["min_bucket_reso"],
                "ss_max_bucket_reso": ds["max_bucket_reso"],
                "ss_reg_dataset_dirs": json.dumps(reg_dirs),
                "ss_bucket_info": json.dumps(batcher.bucket_info(0)),
            }
        )
    else:
        datasets = []
        for ds_index, ds in enumerate(plan.datasets):
            res = ds["resolution"]
            datasets.append(
                {
                    "is_dreambooth": True,
                    "batch_size_per_device": ds["batch_size"],
                    "num_train_images": sum(
                        i.num_repeats for i in plan.items if i.dataset == ds_index and not i.is_reg
                    ),
                    "num_reg_images": sum(
                        i.num_repeats for i in plan.items if i.dataset == ds_index and i.is_reg
                    ),
                    "resolution": [res, res] if isinstance(res, int) else list(res),
                    "enable_bucket": bool(ds["enable_bucket"]),
                    "min_bucket_reso": ds["min_bucket_reso"],
                    "max_bucket_reso": ds["max_bucket_reso"],
                    "tag_frequency": ds_tag_freq.get(ds_index, {}),
                    "bucket_info": batcher.bucket_info(ds_index),
                    "resize_interpolation": ds.get("resize_interpolation"),
                    "subsets": [
                        {
                            "img_count": sum(1 for it in plan.items if it.subset == si),
                            "num_repeats": s.num_repeats,
                            "color_aug": bool(s.color_aug),
                            "flip_aug": bool(s.flip_aug),
                            "random_crop": bool(s.random_crop),
                            "shuffle_caption": bool(s.shuffle_caption),
                            "keep_tokens": s.keep_tokens,
                            "keep_tokens_separator": s.keep_tokens_separator,
                            "secondary_separator": s.secondary_separator,
                            "enable_wildcard": bool(s.enable_wildcard),
                            "caption_prefix": s.caption_prefix,
                            "caption_suffix": s.caption_suffix,
                            "resize_interpolation": ds.get("resize_interpolation"),
                            "image_dir": os.path.basename(os.path.normpath(s.image_dir)),
                            "class_tokens": s.class_tokens,
                            "is_reg": bool(s.is_reg),
                        }
                        for si, s in enumerate(plan.subsets)
                        if s.dataset == ds_index
                    ],
                }
            )
        meta["ss_datasets"] = json.dumps(datasets)
    return {k: str(v) for k, v in meta.items()}
