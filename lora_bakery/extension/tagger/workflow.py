"""One call for the CLI, the UI, the API and the demo: settings → tagged images → caption plan.

``tag_dataset`` resolves and loads the taggers, leaves out images whose caption would be skipped
anyway (skip mode), tags the rest, and returns the run plus a ``safety.Plan`` for the captions.
Applying the plan (``dataset.safety.apply(plan, root)``) is the caller's step, after the preview.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lora_bakery.extension.dataset.safety import Plan
from lora_bakery.extension.host.base import Progress
from lora_bakery.extension.tagger.captions import SKIP_EXISTS, WriteMode, caption_path, plan_captions
from lora_bakery.extension.tagger.engine import TagRun, tag_images
from lora_bakery.extension.tagger.models import DEFAULT_TAGGER, resolve_model
from lora_bakery.extension.tagger.postprocess import FormatOptions, Thresholds
from lora_bakery.extension.tagger.session import TaggerModel, load_tagger
from lora_bakery.trainer.data.captions import split_trained_line


@dataclass
class TagSettings:
    """Everything the Tag panel / ``bakery tag`` asks for (field names are the UI/CLI names).

    Attributes:
        models (`list[str]`): folders, known names or HF repo ids; several are unioned.
        models_dir (`str`, *optional*): where named models are stored/downloaded.
        download (`bool`): allow downloading missing known models.
        general_threshold / character_threshold (`float`): 0.35 / 0.85 (SmilingWolf's Space).
        general_mcut / character_mcut (`bool`): MCut instead of the fixed threshold.
        replace_underscores, escape_parentheses, rating, characters_first, exclude, max_tags:
            see ``postprocess.FormatOptions``.
        mode (`str`): ``skip`` / ``overwrite`` / ``prepend`` / ``append``.
        caption_extension (`str`): ``.txt``.
        batch_size (`int`): images per inference call (dynamic-batch models).
        workers (`int`, *optional*): decoding threads.
        providers (`list[str]`, *optional*): onnxruntime providers; default CUDA then CPU.
    """

    models: list[str] = field(default_factory=lambda: [DEFAULT_TAGGER])
    models_dir: str | None = None
    download: bool = True
    general_threshold: float = 0.35
    character_threshold: float = 0.85
    general_mcut: bool = False
    character_mcut: bool = False
    replace_underscores: bool = True
    escape_parentheses: bool = False
    rating: str = "none"
    characters_first: bool = True
    exclude: list[str] = field(default_factory=list)
    max_tags: int | None = None
    mode: WriteMode = "skip"
    caption_extension: str = ".txt"
    batch_size: int = 8
    workers: int | None = None
    providers: list[str] | None = None

    def thresholds(self) -> Thresholds:
        return Thresholds(self.general_threshold, self.character_threshold, self.general_mcut, self.character_mcut)

    def format_options(self) -> FormatOptions:
        return FormatOptions(
            replace_underscores=self.replace_underscores,
            escape_parentheses=self.escape_parentheses,
            rating=self.rating,  # type: ignore[arg-type]
            characters_first=self.characters_first,
            exclude=tuple(self.exclude),
            max_tags=self.max_tags,
        )


def load_taggers(settings: TagSettings) -> list[TaggerModel]:
    """Resolve (download if allowed) and open every model in ``settings.models``."""
    if not settings.models:
        raise ValueError("choose at least one tagger model")
    return [
        load_tagger(
            resolve_model(spec, settings.models_dir, download=settings.download),
            thresholds=settings.thresholds(),
            providers=settings.providers,
        )
        for spec in settings.models
    ]


def _has_caption(image: Path, extension: str) -> bool:
    """Whether the line the trainer reads (line 1) holds any text (skip mode leaves such captions alone)."""
    try:
        text = caption_path(image, extension).read_bytes().decode("utf-8-sig", "replace")
    except OSError:
        return False
    return bool(split_trained_line(text)[0].strip())


def tag_dataset(
    images: Sequence[str | Path],
    settings: TagSettings,
    progress: Progress | None = None,
    taggers: Sequence[TaggerModel] | None = None,
) -> tuple[TagRun, Plan]:
    """Tag images and plan their caption files.

    Args:
        images (`Sequence[str | Path]`): image files (e.g. from the dataset scan).
        settings (`TagSettings`): models, thresholds, formatting, write mode.
        progress (`Progress`, *optional*): progress and interrupt (a job context).
        taggers (`Sequence[TaggerModel]`, *optional*): already loaded taggers to reuse.

    Returns:
        `tuple[TagRun, Plan]`: what was tagged (and skipped, with reasons), and the caption plan;
        after an interrupt the plan covers the images tagged so far.
    """
    paths = [Path(p) for p in images]
    todo = paths
    already: list[Path] = []
    if settings.mode == "skip":
        flags = [_has_caption(p, settings.caption_extension) for p in paths]
        todo = [p for p, has in zip(paths, flags) if not has]
        already = [p for p, has in zip(paths, flags) if has]
    models = list(taggers) if taggers is not None else load_taggers(settings)
    run = tag_images(
        todo, models, options=settings.format_options(), batch_size=settings.batch_size,
        workers=settings.workers, progress=progress,
    )
    plan = plan_captions({r.path: r.tags for r in run.results}, settings.mode, extension=settings.caption_extension)
    exists = [(str(caption_path(p, settings.caption_extension)), SKIP_EXISTS) for p in already]
    plan.skipped = exists + plan.skipped + [(str(p), why) for p, why in run.skipped]
    return run, plan
