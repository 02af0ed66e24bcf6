"""Tag many images: decode in threads while the model runs, in batches when the model allows.

The main thread runs inference; a thread pool decodes and preprocesses the next images meanwhile
(Pillow releases the GIL while decoding and resampling). Futures are submitted in a sliding window
so memory stays bounded and results come back in input order. A fixed-batch model is fed in
chunks of its batch size by ``TaggerModel.predict``, so a batch-1 export simply runs one at a time.

Progress and interrupt go through a ``Progress`` (``host.base``): ``begin``, one ``step`` per image
(tagged or skipped), ``interrupted`` checked before each batch, ``end``. An interrupt keeps every
image tagged so far; corrupt images are skipped with a reason, never raised.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lora_bakery.extension.host.base import NullProgress, Progress
from lora_bakery.extension.tagger.postprocess import FormatOptions, Prediction, format_tags, select, union
from lora_bakery.extension.tagger.preprocess import load_arrays, to_batch
from lora_bakery.extension.tagger.session import TaggerModel


@dataclass
class ImageTags:
    """The tags of one image.

    Attributes:
        path (`Path`): the image.
        prediction (`Prediction`): selected raw tags with probabilities (union over taggers).
        tags (`list[str]`): formatted caption tags, in order.
    """

    path: Path
    prediction: Prediction
    tags: list[str]

    @property
    def caption(self) -> str:
        return ", ".join(self.tags)


@dataclass
class TagRun:
    """What a tagging run did.

    Attributes:
        results (`list[ImageTags]`): tagged images, in input order.
        skipped (`list[tuple[Path, str]]`): images that could not be read, with the reason.
        interrupted (`bool`): stopped early; ``results`` hold what was finished.
        notes (`list[str]`): provider fallbacks and other things to tell the user.
        seconds (`float`): wall time.
    """

    results: list[ImageTags] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def captions(self) -> dict[Path, str]:
        """New caption text per image (``", "``-joined tags)."""
        return {r.path: r.caption for r in self.results}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"cannot read image ({type(exc).__name__}: {text})"


def _infer(
    items: list[tuple[Path, dict[int, np.ndarray]]], taggers: Sequence[TaggerModel], options: FormatOptions
) -> list[ImageTags]:
    per_tagger = []
    for tagger in taggers:
        probs = tagger.predict(to_batch([arrays[tagger.size] for _, arrays in items]))
        per_tagger.append([select(row, tagger.labels, tagger.thresholds) for row in probs])
    out = []
    for i, (path, _) in enumerate(items):
        prediction = union([preds[i] for preds in per_tagger])
        out.append(ImageTags(path, prediction, format_tags(prediction, options)))
    return out


def tag_images(
    paths: Sequence[str | Path],
    taggers: Sequence[TaggerModel],
    *,
    options: FormatOptions | None = None,
    batch_size: int = 8,
    workers: int | None = None,
    progress: Progress | None = None,
) -> TagRun:
    """Tag ``paths`` with one or more taggers (their selections unioned, each tag once).

    Args:
        paths (`Sequence[str | Path]`): image files.
        taggers (`Sequence[TaggerModel]`): from ``session.load_tagger``; at least one.
        options (`FormatOptions`, *optional*): how tags become caption text.
        batch_size (`int`, defaults to 8): images per inference call for dynamic-batch models.
        workers (`int`, *optional*): decoding threads; default min(4, CPU count). 0 decodes in
            the calling thread (no overlap; for comparisons).
        progress (`Progress`, *optional*): progress/interrupt; defaults to ``NullProgress()``.

    Returns:
        `TagRun`: per-image tags, skipped files with reasons, notes, interrupted flag.
    """
    if not taggers:
        raise ValueError("tag_images needs at least one tagger")
    options = options or FormatOptions()
    progress = progress or NullProgress()
    paths = [Path(p) for p in paths]
    batch_size = max(1, batch_size)
    sizes = tuple(sorted({t.size for t in taggers}))
    run = TagRun(notes=[note for t in taggers for note in t.notes])
    started = time.perf_counter()
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bakery-tagger") if workers else None
    pending: deque[tuple[Path, Future]] = deque()
    window = batch_size * 2 + max(workers, 1)
    queue = iter(paths)

    def refill() -> None:
        while pool is not None and len(pending) < window:
            path = next(queue, None)
            if path is None:
                return
            pending.append((path, pool.submit(load_arrays, path, sizes)))

    def next_item() -> tuple[Path, dict[int, np.ndarray] | BaseException] | None:
        if pool is None:
            path = next(queue, None)
            if path is None:
                return None
            try:
                return path, load_arrays(path, sizes)
            except Exception as exc:
                return path, exc
        refill()
        if not pending:
            return None
        path, future = pending.popleft()
        exc = future.exception()
        return path, exc if exc is not None else future.result()

    progress.begin(len(paths), f"Tagging {len(paths)} images")
    try:
        batch: list[tuple[Path, dict[int, np.ndarray]]] = []
        while True:
            if progress.interrupted:
                run.interrupted = True
                break
            item = next_item()
            if item is not None:
                path, data = item
                if isinstance(data, BaseException):
                    run.skipped.append((path, _reason(data)))
                    progress.step(1, f"skipped {path.name}")
                else:
                    batch.append((path, data))
            if batch and (len(batch) >= batch_size or item is None):
                if progress.interrupted:
                    run.interrupted = True
                    break
                run.results.extend(_infer(batch, taggers, options))
                progress.step(len(batch), f"tagged {batch[-1][0].name}")
                batch = []
            if item is None:
                break
    finally:
        if pool is not None:
            for _, future in pending:
                future.cancel()
            pool.shutdown(wait=True)
        progress.end()
    run.seconds = time.perf_counter() - started
    return run
