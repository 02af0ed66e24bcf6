"""Plan a reg-image run: which images, with which prompt, size, seed, name and folder.

Pure planning (file names and image headers only; nothing is generated or written). The layout is
what kohya's folder mode expects for ``reg_data_dir`` (reference/lora-baking-guide.txt, "Folders"):
``<output>/<repeats>_<name>/`` mirrors each concept folder ``<source>/<repeats>_<name>/``, every
reg image is named like its source image (``.png``; the 2nd…Nth image of a caption get
``_reg1``…), and its stripped caption sits beside it as ``.txt``.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from lora_bakery.extension.reg.prompts import Prompted, class_from_folder, class_prompt_prompt, make_prompt
from lora_bakery.extension.reg.settings import RegSettings
from lora_bakery.trainer.data import folders
from lora_bakery.trainer.data.buckets import BucketManager, BucketSettings

#: Folder names that mean "the training images" (kohya's train/ + reg/ convention).
TRAIN_NAMES = frozenset({"train", "training", "img", "images", "image"})
IMAGE_SUFFIX = ".png"


@dataclass(frozen=True)
class RegItem:
    """One reg image to make.

    Attributes:
        source (`Path`): the training image it mirrors.
        source_rel (`str`): that image relative to the source root (POSIX).
        out_rel (`str`): the reg image relative to the output root (POSIX), e.g. ``10_chara/a.png``.
        original (`str`): the training caption (empty in Dreambooth mode without one).
        caption (`str`): the stripped caption written beside the reg image.
        prompt (`str`) / negative_prompt (`str`): what is generated.
        width (`int`) / height (`int`): the generated size.
        seed (`int`): the seed to use.
        removed (`tuple[str, ...]`): tags removed from the caption.
    """

    source: Path
    source_rel: str
    out_rel: str
    original: str
    caption: str
    prompt: str
    negative_prompt: str
    width: int
    height: int
    seed: int
    removed: tuple[str, ...] = ()

    @property
    def caption_rel(self) -> str:
        return self.out_rel[: -len(IMAGE_SUFFIX)] + folders.CAPTION_EXTENSION


@dataclass
class RegPlan:
    """Everything a run will do, shown before anything is generated.

    Attributes:
        source (`Path`) / output (`Path`): the training folder and the reg folder.
        settings (`RegSettings`): the options used.
        items (`list[RegItem]`): the images to make, in order.
        skipped (`list[tuple[str, str]]`): ``(source image, reason)`` for every image left out.
        folders (`list[tuple[str, str, int]]`): ``(concept folder, reg folder, images)``.
        warnings (`list[str]`): things to tell the user.
    """

    source: Path
    output: Path
    settings: RegSettings
    items: list[RegItem] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    folders: list[tuple[str, str, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def sizes(self) -> Counter[tuple[int, int]]:
        """How many images of each (width, height): the batches the host gets."""
        return Counter((i.width, i.height) for i in self.items)


def default_output_dir(source: str | os.PathLike) -> Path:
    """Where reg images go by default: ``reg/`` beside ``train/``, else ``<name>_reg`` beside the source.

    Args:
        source (`str | os.PathLike`): the training folder.

    Returns:
        `Path`: the suggested reg folder (never inside the source).
    """
    src = Path(source).expanduser().resolve()
    if folders.parse_concept_folder(src.name)[0] is not None:  # a single concept folder was given
        src = src.parent
    return src.parent / ("reg" if src.name.lower() in TRAIN_NAMES else f"{src.name}_reg")


def check_output(source: Path, output: Path) -> None:
    """Refuse a reg folder that would mix with the training images.

    Raises:
        ValueError: the output is the source, inside it, or holds it.
    """
    src, out = source.resolve(), output.expanduser().resolve()
    if out == src or src in out.parents:
        raise ValueError(f"the reg folder {out} is inside the training folder {src}; kohya would read the reg "
                         f"images as training images. Put it beside it, e.g. {default_output_dir(src)}")
    if out in src.parents:
        raise ValueError(f"the reg folder {out} contains the training folder {src}; choose a folder beside it, "
                         f"e.g. {default_output_dir(src)}")


def concept_folders(source: Path) -> tuple[list[Path], list[str]]:
    """The ``N_name`` folders of ``source`` (or ``source`` itself when it is one), and warnings.

    Raises:
        ValueError: ``source`` is missing or holds no concept folder.
    """
    if not source.is_dir():
        raise ValueError(f"training folder {source} does not exist")
    if folders.parse_concept_folder(source.name)[0] is not None and folders.list_images(source):
        return [source], []
    found, warnings = [], []
    for entry in sorted(os.scandir(source), key=lambda e: e.name):
        if not entry.is_dir() or folders.is_skipped_dir(entry.name):
            continue
        if folders.parse_concept_folder(entry.name)[0] is None:
            warnings.extend(f"{w} Its images get no reg images." for w in folders.problems(entry.name))
            continue
        found.append(Path(entry.path))
    if not found:
        raise ValueError(f"no concept folders in {source}: kohya's folder mode needs subfolders named N_name "
                         "(e.g. 10_mychar) holding the images")
    return found, warnings


def read_training_caption(image: Path) -> tuple[str | None, str | None]:
    """``(caption, None)`` or ``(None, reason)``: kohya's first line of the ``.txt`` beside ``image``."""
    path = folders.caption_path(image)
    if not path.is_file():
        return None, f"no caption file ({path.name}); caption it in the Dataset tab or use Dreambooth mode"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        return None, f"{path.name} is not UTF-8 text; re-save it as UTF-8 (Dataset tab)"
    except OSError as exc:
        return None, f"{path.name} cannot be read: {exc.strerror or exc}"
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if not first.strip():
        return None, f"{path.name} is empty"
    return first.strip(), None


def _image_size(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.size, None
    except Exception as exc:  # noqa: BLE001 - any unreadable image is a reason, not a crash
        return None, f"unreadable image ({type(exc).__name__}: {exc})"


def _size_for(settings: RegSettings, manager: BucketManager | None, image: Path) -> tuple[tuple[int, int] | None, str | None]:
    if manager is None:
        return (settings.width, settings.height), None
    size, reason = _image_size(image)
    if size is None:
        return None, reason
    choice = manager.choose(*size)
    if choice.problem:
        return None, choice.problem
    return choice.bucket, None


def bucket_manager(settings: RegSettings) -> BucketManager | None:
    """kohya's bucket manager for the settings (``None`` in fixed-size mode).

    Raises:
        ValueError: the bucket options cannot work (min > resolution…), naming them.
    """
    if settings.size_mode != "bucket":
        return None
    low, high = settings.bucket_range()
    bs = BucketSettings(resolution=(settings.resolution, settings.resolution), min_reso=low, max_reso=high,
                        step=settings.bucket_step)
    try:
        bs.snapped()
    except ValueError as exc:
        raise ValueError(f"bucket settings: {exc}") from None
    return BucketManager(bs)


def plan_reg(source: str | os.PathLike, output: str | os.PathLike | None, settings: RegSettings) -> RegPlan:
    """Plan the reg images of a training folder.

    Args:
        source (`str | os.PathLike`): the training folder (holding ``N_name`` folders), or one concept folder.
        output (`str | os.PathLike`, *optional*): the reg folder; default :func:`default_output_dir`.
        settings (`RegSettings`): prompts, sizes, seeds.

    Returns:
        `RegPlan`: items in (folder, file name, copy) order, what was skipped and why.

    Raises:
        ValueError: missing source, no concept folder, output inside the source, bad bucket options.
    """
    src = Path(source).expanduser().resolve()
    concepts, warnings = concept_folders(src)
    root = src.parent if concepts == [src] else src
    out = Path(output).expanduser().resolve() if output else default_output_dir(src)
    check_output(root, out)
    manager = bucket_manager(settings)
    plan = RegPlan(source=root, output=out, settings=settings, warnings=warnings)
    rng = random.Random()
    taken: dict[str, str] = {}
    for concept in concepts:
        repeats, name = folders.parse_concept_folder(concept.name)
        reg_folder = folders.concept_folder_name(settings.reg_repeats or repeats or 1, name)
        before = len(plan.items)
        class_prompt = settings.class_prompt.strip() or class_from_folder(name)
        if settings.mode == "dreambooth" and not class_prompt:
            for image in folders.list_images(concept):
                plan.skipped.append((image.relative_to(root).as_posix(), f"Dreambooth mode: give a class prompt "
                                     f"(the folder name '{concept.name}' has no class part, e.g. '10_{name}_1girl')"))
            continue
        for image in folders.list_images(concept):
            rel = image.relative_to(root).as_posix()
            prompted, original, reason = _prompt_for(settings, image, class_prompt)
            if prompted is None:
                plan.skipped.append((rel, reason or "no prompt"))
                continue
            size, reason = _size_for(settings, manager, image)
            if size is None:
                plan.skipped.append((rel, reason or "no size"))
                continue
            base_seed = rng.randrange(2**31 - settings.images_per_caption) if settings.seed < 0 else None
            for k in range(settings.images_per_caption):
                out_rel = f"{reg_folder}/{image.stem}{'' if k == 0 else f'_reg{k}'}{IMAGE_SUFFIX}"
                if out_rel.lower() in taken:
                    plan.skipped.append((rel, f"its reg image {out_rel} has the same name as the one of "
                                              f"{taken[out_rel.lower()]}; rename one of the two"))
                    continue
                taken[out_rel.lower()] = rel
                seed = settings.seed + len(plan.items) if base_seed is None else base_seed + k
                plan.items.append(RegItem(
                    source=image, source_rel=rel, out_rel=out_rel, original=original, caption=prompted.caption,
                    prompt=prompted.prompt, negative_prompt=settings.negative_prompt, width=size[0], height=size[1],
                    seed=seed, removed=prompted.removed,
                ))
        plan.folders.append((concept.name, reg_folder, len(plan.items) - before))
    if not plan.items and not plan.skipped:
        plan.warnings.append(f"no images in the concept folders of {root}")
    return plan


def _prompt_for(settings: RegSettings, image: Path, class_prompt: str) -> tuple[Prompted | None, str, str | None]:
    """(prompted, original caption, reason when skipped) for one training image."""
    if settings.mode == "dreambooth":
        prompted = class_prompt_prompt(class_prompt, settings.prefix, settings.suffix, settings.escape_parentheses)
        return prompted, "", None
    caption, reason = read_training_caption(image)
    if caption is None:
        return None, "", reason
    prompted = make_prompt(caption, settings.remove, settings.prefix, settings.suffix, settings.escape_parentheses)
    if not prompted.caption:
        removed = ", ".join(prompted.removed) or "every tag"
        return None, caption, (f"empty prompt after removing triggers/un-regulated tags ({removed}); "
                               "nothing left to regulate, so no reg image")
    return prompted, caption, None
