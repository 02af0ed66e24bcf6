"""Dataset statistics: tag frequencies (total and per folder), tag filters, caption flags.

Inputs are parsed captions keyed by image (whatever key the caller uses, usually the image path
relative to the training root, so its folder is the concept folder ``N_name``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lora_bakery.extension.dataset.tags.match import compile_patterns
from lora_bakery.extension.dataset.tags.normalize import duplicated, tag_key
from lora_bakery.extension.dataset.tags.parse import KEEP, split_tags
from lora_bakery.trainer.data.captions import split_trained_line

MAX_CAPTION_BYTES = 1024
"""recipes.md: a caption over ~1 KB means the tagger went insane (blurry image)."""

MAX_TAGS = 64
"""Default tag count above which a caption is flagged (WD14 usually gives 15–40 tags)."""


def tag_frequency(tag_lists: Iterable[Sequence[str]], loose: bool = False) -> Counter[str]:
    """How many captions hold each tag (a tag repeated in one caption counts once).

    Args:
        tag_lists (`Iterable[Sequence[str]]`): parsed captions.
        loose (`bool`, *optional*, defaults to False): count by :func:`~.normalize.tag_key`
            (what :func:`~.edit.sort_by_frequency` wants) instead of exact text.

    Returns:
        `Counter[str]`: tag (or key) → caption count; ``|||`` excluded.
    """
    counts: Counter[str] = Counter()
    for tags in tag_lists:
        items = {tag_key(t) for t in tags if t != KEEP} if loose else {t for t in tags if t != KEEP}
        counts.update(items)
    return counts


def folder_of(key: str) -> str:
    """The folder part of a caption key (``10_chara/img.png`` → ``10_chara``; ``""`` at the root).

    Args:
        key (`str`): a path-like key with ``/`` or ``\\`` separators.

    Returns:
        `str`: everything before the last separator.
    """
    cut = max(key.rfind("/"), key.rfind("\\"))
    return key[:cut] if cut >= 0 else ""


@dataclass
class TagRow:
    """One row of the frequency table."""

    tag: str
    total: int
    folders: dict[str, int] = field(default_factory=dict)


def frequency_table(
    captions: Mapping[str, Sequence[str]], group: Callable[[str], str] = folder_of
) -> list[TagRow]:
    """The tag frequency table: captions per tag, in total and per folder.

    Args:
        captions (`Mapping[str, Sequence[str]]`): key → parsed caption.
        group (`Callable[[str], str]`, *optional*): key → folder; defaults to :func:`folder_of`.

    Returns:
        `list[TagRow]`: most frequent first, ties alphabetical; sort again in the UI as needed.
    """
    rows: dict[str, TagRow] = {}
    for key, tags in captions.items():
        folder = group(key)
        for t in dict.fromkeys(tags):
            if t == KEEP:
                continue
            row = rows.get(t)
            if row is None:
                row = rows[t] = TagRow(t, 0)
            row.total += 1
            row.folders[folder] = row.folders.get(folder, 0) + 1
    return sorted(rows.values(), key=lambda r: (-r.total, r.tag))


def spelling_variants(vocab: Iterable[str]) -> dict[str, list[str]]:
    """Tags written several ways (``long_hair`` and ``long hair``): a hint to normalise.

    Args:
        vocab (`Iterable[str]`): distinct tags.

    Returns:
        `dict[str, list[str]]`: key → the spellings, only where there are two or more.
    """
    out: dict[str, list[str]] = {}
    for t in vocab:
        if t != KEEP:
            out.setdefault(tag_key(t), []).append(t)
    return {k: sorted(set(v)) for k, v in out.items() if len(set(v)) > 1}


def filter_captions(
    captions: Mapping[str, Sequence[str]],
    all_of: Iterable[str] = (),
    any_of: Iterable[str] = (),
    none_of: Iterable[str] = (),
) -> list[str]:
    """Keys of the captions that pass a tag filter (the Dataset Tag Editor's AND / OR / NONE).

    Every filter takes patterns (exact, ``*`` glob, ``re:`` regex; see :mod:`.match`). A caption
    passes when every ``all_of`` pattern matches one of its tags, at least one ``any_of``
    pattern does (when any are given) and no ``none_of`` pattern does.

    Args:
        captions (`Mapping[str, Sequence[str]]`): key → parsed caption.
        all_of, any_of, none_of (`Iterable[str]`, *optional*): patterns.

    Returns:
        `list[str]`: matching keys, in ``captions`` order.
    """
    alls = [compile_patterns([p]) for p in all_of if p.strip()]
    anys = compile_patterns(any_of)
    nones = compile_patterns(none_of)
    out = []
    for key, tags in captions.items():
        if alls and not all(any(m.matches(t) for t in tags) for m in alls):
            continue
        if anys and not any(anys.matches(t) for t in tags):
            continue
        if nones and any(nones.matches(t) for t in tags):
            continue
        out.append(key)
    return out


@dataclass(frozen=True)
class CaptionFlag:
    """A problem with one caption: ``code`` for the program, ``message`` for the user."""

    code: str
    message: str


def caption_flags(
    caption: str | None, max_bytes: int = MAX_CAPTION_BYTES, max_tags: int = MAX_TAGS
) -> list[CaptionFlag]:
    """What is wrong with one caption text.

    Codes: ``missing`` (no caption file: pass None), ``empty``, ``too_large`` (over
    ``max_bytes`` in UTF-8), ``too_many_tags``, ``duplicates``, ``multiline`` (kohya reads only
    the first line unless wildcards are on), ``separators`` (``|||`` more than twice: kohya only
    uses the first two).

    Args:
        caption (`str` or `None`): the caption text, None when the file is missing.
        max_bytes (`int`, *optional*, defaults to 1024): size limit.
        max_tags (`int`, *optional*, defaults to 64): tag count limit.

    Returns:
        `list[CaptionFlag]`: empty when the caption is fine.
    """
    if caption is None:
        return [CaptionFlag("missing", "no caption file")]
    tags = split_tags(split_trained_line(caption)[0])  # the line the trainer reads
    real = [t for t in tags if t != KEEP]
    flags = []
    if not real:
        flags.append(CaptionFlag("empty", "the caption has no tags"))
    size = len(caption.encode("utf-8", "surrogateescape"))
    if size > max_bytes:
        flags.append(
            CaptionFlag(
                "too_large",
                f"{size} bytes (over {max_bytes}): the tagger may have gone insane (blurry image?)",
            )
        )
    if len(real) > max_tags:
        flags.append(CaptionFlag("too_many_tags", f"{len(real)} tags (over {max_tags})"))
    dups = duplicated(real)
    if dups:
        flags.append(CaptionFlag("duplicates", "repeated: " + ", ".join(dups)))
    if split_trained_line(caption)[1].strip():
        flags.append(
            CaptionFlag(
                "multiline", "several lines: kohya reads only the first line (unless wildcards are on)"
            )
        )
    seps = len(tags) - len(real)
    if seps > 2:
        flags.append(CaptionFlag("separators", f"'|||' appears {seps} times; kohya uses only the first two"))
    return flags


def flag_dataset(
    captions: Mapping[str, str | None], max_bytes: int = MAX_CAPTION_BYTES, max_tags: int = MAX_TAGS
) -> dict[str, list[CaptionFlag]]:
    """:func:`caption_flags` for every caption, keeping only the flagged ones.

    Args:
        captions (`Mapping[str, str | None]`): key → caption text (None: missing file).
        max_bytes, max_tags: as in :func:`caption_flags`.

    Returns:
        `dict[str, list[CaptionFlag]]`: key → flags, flagged captions only.
    """
    out = {}
    for key, text in captions.items():
        flags = caption_flags(text, max_bytes, max_tags)
        if flags:
            out[key] = flags
    return out
