"""Tagger output into ``.txt`` captions: skip existing / overwrite / prepend / append.

Returns a ``dataset.safety.Plan``: nothing is written until ``safety.apply``, which backs up
every caption it replaces and makes the change undoable. Captions are read as UTF-8 (a BOM is
tolerated); a caption that is not UTF-8 is left alone with a reason (the caption editor offers to
rewrite it), except in ``overwrite`` mode where its bytes are backed up and replaced.

Merging (prepend/append) goes through the caption editor's parser: tags compared by
``tag_key`` (``long_hair`` = ``long hair``), first occurrence kept, and a caption with kohya's
``|||`` keep-tokens separator keeps its fixed part first: prepended tags go right after it.

Every mode works on line 1 of a caption file, the line the trainer reads
(``trainer.data.captions.split_trained_line``); any further lines stay byte for byte.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

from lora_bakery.extension.dataset.safety import Change, Plan
from lora_bakery.extension.dataset.tags.normalize import remove_duplicates
from lora_bakery.extension.dataset.tags.parse import KEEP, join_tags, split_tags
from lora_bakery.trainer.data.captions import join_trained_line, split_trained_line

WriteMode = Literal["skip", "overwrite", "prepend", "append"]
WRITE_MODES: tuple[str, ...] = ("skip", "overwrite", "prepend", "append")
#: Why skip mode leaves a caption alone, with the option that changes it.
SKIP_EXISTS = "caption exists (skip mode; --mode or 'Existing captions': overwrite, prepend or append)"


def caption_path(image: str | Path, extension: str = ".txt") -> Path:
    """The caption file of an image: same folder, same stem, ``extension``."""
    image = Path(image)
    return image.with_name(image.stem + extension)


def merge_caption(existing: str | None, tags: Sequence[str], mode: WriteMode) -> str | None:
    """The new caption text for one image, or `None` to leave the file as it is.

    Only line 1 (the trained line) is merged or overwritten; the lines after it are kept as they are.

    Args:
        existing (`str`, *optional*): the current caption text; `None` when there is no file.
        tags (`Sequence[str]`): the tagger's formatted tags, in order.
        mode (`str`): ``"skip"`` (only images whose trained line has no tags), ``"overwrite"``,
            ``"prepend"`` (new tags first, after any ``|||`` fixed part) or ``"append"``.

    Returns:
        `str` or `None`: the whole caption file text to write.
    """
    if mode not in WRITE_MODES:
        raise ValueError(f"write mode must be one of {', '.join(WRITE_MODES)}, not {mode!r}")
    line, rest = split_trained_line(existing or "")
    old = split_tags(line)
    if mode == "skip" and old:
        return None
    if mode in ("skip", "overwrite") or not old:
        new = list(tags)
    elif mode == "append":
        new = old + list(tags)
    else:
        cut = old.index(KEEP) + 1 if KEEP in old else 0
        new = old[:cut] + list(tags) + old[cut:]
    return join_trained_line(join_tags(remove_duplicates(new)), rest)


def _read(path: Path) -> tuple[str | None, str | None]:
    """(text, problem): text `None` when there is no file; problem set when it cannot be decoded."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read caption ({exc.strerror or exc})"
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        return "", ("caption is not UTF-8: rewrite it first (caption batch operation 'rewrite-utf8'; "
                    "bakery dataset captions ROOT rewrite-utf8 --apply), or tag with mode overwrite")


def plan_captions(
    captions: Mapping[str | Path, Sequence[str]],
    mode: WriteMode = "skip",
    *,
    extension: str = ".txt",
    op: str = "tag",
) -> Plan:
    """A plan that writes the tagger's tags into each image's caption file.

    Args:
        captions (`Mapping[path, Sequence[str]]`): image path → formatted tags
            (``{r.path: r.tags for r in run.results}``).
        mode (`str`, defaults to ``"skip"``): see :func:`merge_caption`.
        extension (`str`, defaults to ``".txt"``): caption file extension.
        op (`str`, defaults to ``"tag"``): operation name for the backup folder.

    Returns:
        `Plan`: ``create`` for new caption files, ``write`` for changed ones; unchanged captions
        produce no change, left-alone ones are listed in ``plan.skipped`` with the reason (an image
        whose caption file another image of the plan already writes, ``a.png`` + ``a.jpg``, is one).
    """
    plan = Plan(op=f"{op}-{mode}")
    owners: dict[Path, str] = {}
    for image, tags in captions.items():
        target = caption_path(image, extension)
        if target in owners:
            plan.skipped.append((os.fspath(image), f"shares its caption file {target.name} with {owners[target]}, "
                                                   "which is tagged into it; rename one of them"))
            continue
        owners[target] = Path(image).name
        text, problem = _read(target)
        if problem and not (mode == "overwrite" and text is not None):
            plan.skipped.append((os.fspath(target), problem))
            continue
        new = merge_caption(text or None, tags, mode)
        if new is None:
            plan.skipped.append((os.fspath(target), SKIP_EXISTS))
            continue
        data = new.encode("utf-8")
        if text is None:
            plan.changes.append(Change(os.fspath(target), "create", data, description=f"tagged: {len(tags)} tags"))
        elif problem or new != text:
            plan.changes.append(Change(os.fspath(target), "write", data, description=f"{mode}: {len(tags)} tags"))
    return plan
