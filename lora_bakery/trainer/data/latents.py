"""Latent caching in RAM and on disk, in kohya's ``.npz`` format, reused only when still valid.

kohya (SD:library/strategy_sd.py, strategy_base.py): ``<stem>_<W:04d>x<H:04d>_sd.npz`` (``_sdxl.npz``
for SDXL), W×H the original image size; keys ``latents`` (unscaled fp32 ``[C, h, w]`` from
``latent_dist.sample()``), ``original_size``, ``crop_ltrb`` and, when used, ``latents_flipped`` and
``alpha_mask``. A file is reused only when its latent shape matches the bucket and the flip/alpha
entries the run needs are present. Two additions kohya ignores: ``bakery_vae`` (a fingerprint of the
VAE, so latents of another model are never reused) and the check that ``original_size`` and
``crop_ltrb`` match the current bucket choice.

Where: the design keeps training out of the user's folders except for caches in a hidden folder,
so files go to ``<image folder>/.bakery/latents/`` by default (kohya writes beside the image).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_via_temp
from . import augment
from .augment import NONE as NO_AUG
from .augment import SampleAug
from .buckets import sdxl_crop_ltrb
from .dataset import DataError, DatasetPlan, TrainItem
from .images import load_mask, load_pixels

SUFFIXES = {"sd1": "_sd.npz", "sd2": "_sd.npz", "sdxl": "_sdxl.npz"}
LATENT_STRIDE = 8
CACHE_DIR = Path(".bakery") / "latents"


def cache_path(item: TrainItem, architecture: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """The ``.npz`` file of an item: ``<stem>_<W:04d>x<H:04d>_sd.npz`` in ``cache_dir``
    (default ``<image folder>/.bakery/latents``)."""
    folder = Path(cache_dir) if cache_dir is not None else item.image.parent / CACHE_DIR
    w, h = item.choice.size
    return folder / f"{item.image.stem}_{w:04d}x{h:04d}{SUFFIXES[architecture]}"


def vae_fingerprint(vae) -> str:
    """A short hash of the VAE's config and a few of its weights (cheap; enough to tell models apart)."""
    digest = hashlib.sha256(repr(sorted(dict(vae.config).items())).encode())
    params = list(vae.parameters())
    for p in (params[0], params[len(params) // 2], params[-1]):
        digest.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class CachedLatents:
    """One item's cache entry (CPU tensors)."""

    latents: torch.Tensor
    latents_flipped: torch.Tensor | None = None
    alpha_mask: torch.Tensor | None = None


@dataclass
class CacheReport:
    """What :meth:`LatentCache.prepare` did."""

    encoded: int = 0
    reused: int = 0
    rejected: list[tuple[Path, str]] = field(default_factory=list)


@torch.no_grad()
def sample_latents(vae, pixels: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
    """``latent_dist.sample()`` of a pixel batch (unscaled, fp32, CPU), each image with its own
    generator so a latent does not depend on its batch mates."""
    p = next(vae.parameters())
    dist = vae.encode(pixels.to(p.device, p.dtype)).latent_dist
    mean, std = dist.mean.float().cpu(), dist.std.float().cpu()
    noise = torch.stack([torch.randn(mean.shape[1:], generator=g) for g in generators])
    return mean + std * noise


def vae_stride(vae) -> int:
    """Pixels per latent: 2 ** (number of VAE blocks - 1); 8 for every SD VAE."""
    blocks = dict(vae.config).get("block_out_channels") or [0, 0, 0, 0]
    return 2 ** (len(blocks) - 1)


def expected_entries(item: TrainItem, stride: int = LATENT_STRIDE) -> dict:
    """The values a valid cache file of ``item`` must hold (besides the latents themselves)."""
    w, h = item.choice.bucket
    return {
        "shape": (h // stride, w // stride),
        "original_size": tuple(item.choice.size),
        "crop_ltrb": tuple(float(v) for v in sdxl_crop_ltrb(item.choice.bucket, item.choice.size)),
    }


def check_npz(path: Path, item: TrainItem, fingerprint: str, stride: int = LATENT_STRIDE) -> str | None:
    """Why the cache file cannot be reused, or ``None`` when it can."""
    if not path.is_file():
        return "missing"
    want = expected_entries(item, stride)
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if "latents" not in keys:
                return "no latents"
            if tuple(npz["latents"].shape[-2:]) != want["shape"]:
                return f"latent size {tuple(npz['latents'].shape[-2:])} != bucket {want['shape']}"
            if item.flip_aug and "latents_flipped" not in keys:
                return "no flipped latents"
            if item.alpha_mask and "alpha_mask" not in keys:
                return "no alpha mask"
            if (
                "original_size" in keys
                and tuple(int(v) for v in npz["original_size"]) != want["original_size"]
            ):
                return "original size changed"
            if "crop_ltrb" in keys and tuple(float(v) for v in npz["crop_ltrb"]) != want["crop_ltrb"]:
                return "crop changed"
            if "bakery_vae" in keys and str(npz["bakery_vae"]) != fingerprint:
                return "made with another VAE"
    except Exception as exc:  # truncated / not a zip
        return f"unreadable ({exc})"
    return None


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    write_via_temp(path, lambda stream: np.savez(stream, **arrays))


class LatentCache:
    """Encodes every item once through the VAE it is given and serves the latents during training.

    Args:
        plan (`DatasetPlan`): the items.
        vae (`AutoencoderKL`): ``views.vae``; used as is (its device and dtype), never loaded here.
        to_disk (`bool`, *optional*): also write/reuse ``.npz`` files.
        cache_dir (`str | Path`, *optional*): one folder for all files instead of each image folder's ``.bakery/latents``.
        seed (`int`, *optional*): seeds the latent sampling per item, so caches are reproducible.
        batch_size (`int`, *optional*): images per VAE call (same bucket only).
    """

    live = False  # latents come from the cache (see LiveLatents)

    def __init__(
        self,
        plan: DatasetPlan,
        vae,
        *,
        to_disk: bool = False,
        cache_dir=None,
        seed: int = 0,
        batch_size: int = 1,
    ):
        for item in plan.items:
            sub = plan.subsets[item.subset]
            if sub.color_aug or sub.random_crop:
                raise DataError(f"{sub.image_dir}: latents cannot be cached with color_aug or random_crop")
        self.plan = plan
        self.vae = vae
        self.to_disk = to_disk
        self.cache_dir = cache_dir
        self.seed = seed
        self.batch_size = max(1, batch_size)
        self.entries: dict[int, CachedLatents] = {}
        self.fingerprint = vae_fingerprint(vae)
        self.stride = vae_stride(vae)

    def path(self, index: int) -> Path:
        """The ``.npz`` path of item ``index``."""
        return cache_path(self.plan.items[index], self.plan.architecture, self.cache_dir)

    def prepare(self, progress: Callable[[int, int], None] | None = None) -> CacheReport:
        """Fill the cache: reuse valid files, encode the rest (grouped by bucket), write files if asked.

        Args:
            progress (`Callable[[int, int], None]`, *optional*): called with (done, total).

        Returns:
            `CacheReport`: counts and why files were rejected.
        """
        report = CacheReport()
        todo: list[int] = []
        for index, item in enumerate(self.plan.items):
            if index in self.entries:
                continue
            if self.to_disk:
                path = self.path(index)
                reason = check_npz(path, item, self.fingerprint, self.stride)
                if reason is None:
                    self.entries[index] = self._load(path)
                    report.reused += 1
                    continue
                if reason != "missing":
                    report.rejected.append((path, reason))
            todo.append(index)
        todo.sort(key=lambda i: self.plan.items[i].bucket)
        groups: list[list[int]] = []
        for index in todo:
            if (
                groups
                and self.plan.items[groups[-1][-1]].bucket == self.plan.items[index].bucket
                and len(groups[-1]) < self.batch_size
            ):
                groups[-1].append(index)
            else:
                groups.append([index])
        done = 0
        for group in groups:
            self._encode(group)
            report.encoded += len(group)
            done += len(group)
            if progress is not None:
                progress(done, len(todo))
        return report

    def _load(self, path: Path) -> CachedLatents:
        with np.load(path, allow_pickle=False) as npz:
            get = lambda k: torch.from_numpy(npz[k].astype(np.float32)) if k in npz.files else None  # noqa: E731
            return CachedLatents(get("latents"), get("latents_flipped"), get("alpha_mask"))

    def _encode_pixels(self, pixels: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        return sample_latents(self.vae, pixels, generators)

    def _encode(self, group: list[int]) -> None:
        items = [self.plan.items[i] for i in group]
        gens = [torch.Generator().manual_seed(self.seed * 1_000_003 + i) for i in group]
        latents = self._encode_pixels(torch.stack([load_pixels(it) for it in items]), gens)
        flipped = None
        if any(it.flip_aug for it in items):
            gens = [torch.Generator().manual_seed(self.seed * 1_000_003 + i + 500_000) for i in group]
            flipped = self._encode_pixels(torch.stack([load_pixels(it, flip=True) for it in items]), gens)
        for k, (index, item) in enumerate(zip(group, items)):
            entry = CachedLatents(
                latents[k].contiguous(),
                flipped[k].contiguous() if flipped is not None and item.flip_aug else None,
                load_mask(item) if item.alpha_mask and item.mask is None else None,
            )
            self.entries[index] = entry
            if self.to_disk:
                want = expected_entries(item, self.stride)
                arrays = {
                    "latents": entry.latents.numpy(),
                    "original_size": np.array(want["original_size"]),
                    "crop_ltrb": np.array(want["crop_ltrb"]),
                    "bakery_vae": np.array(self.fingerprint),
                }
                if entry.latents_flipped is not None:
                    arrays["latents_flipped"] = entry.latents_flipped.numpy()
                if entry.alpha_mask is not None:
                    arrays["alpha_mask"] = entry.alpha_mask.numpy()
                _save_npz(self.path(index), arrays)

    def get(self, index: int, flip: bool = False) -> torch.Tensor:
        """Unscaled latents ``[C, h, w]`` of item ``index`` (flipped ones when ``flip``)."""
        entry = self.entries.get(index)
        if entry is None:
            raise KeyError(f"item {index} is not cached; call prepare() first")
        if flip:
            if entry.latents_flipped is None:
                raise DataError(
                    f"{self.plan.items[index].image}: flipped latents were not cached (flip_aug off)"
                )
            return entry.latents_flipped
        return entry.latents

    def mask(self, index: int, flip: bool = False, aug: SampleAug = NO_AUG) -> torch.Tensor | None:
        """The item's loss mask ``[H, W]`` (cached alpha, else read from its mask file), or ``None``.

        ``aug`` is always :data:`augment.NONE` here (cached runs have no random crop); it is accepted so the
        loop calls this and :meth:`LiveLatents.mask` alike.
        """
        entry = self.entries.get(index)
        item = self.plan.items[index]
        if entry is not None and entry.alpha_mask is not None:
            return entry.alpha_mask.flip(-1) if flip else entry.alpha_mask
        return load_mask(item, flip=flip)


class LiveLatents:
    """Latents encoded every step, for runs with ``random_crop`` / ``color_aug`` (which kohya will not cache).

    Same role as :class:`LatentCache` in the loop: :meth:`augment` draws a sample's augmentation from
    its random source, :meth:`encode` returns the batch's latents, :meth:`mask` its masks cropped the
    same way. Costs one VAE encode per image per step.
    """

    live = True

    def __init__(self, plan: DatasetPlan, vae) -> None:
        self.plan = plan
        self.vae = vae

    def augment(self, index: int, rng) -> SampleAug:
        """Item ``index``'s augmentation for this step (crop box, hue shift or gamma), drawn from ``rng``."""
        item = self.plan.items[index]
        return augment.draw(item.random_crop, item.color_aug, item.choice.resized, item.choice.bucket, rng)

    def encode(self, indices: list[int], flips: list[bool], augs: list[SampleAug], seeds: list[int]) -> torch.Tensor:
        """Unscaled latents ``[B, C, h, w]`` (CPU, fp32) of the augmented, possibly flipped images."""
        items = [self.plan.items[i] for i in indices]
        pixels = torch.stack([load_pixels(it, f, a) for it, f, a in zip(items, flips, augs)])
        return sample_latents(self.vae, pixels, [torch.Generator().manual_seed(s) for s in seeds])

    def mask(self, index: int, flip: bool = False, aug: SampleAug = NO_AUG) -> torch.Tensor | None:
        """The item's loss mask, cropped like its image this step."""
        return load_mask(self.plan.items[index], flip=flip, aug=aug)
