"""``selected_tags.csv``: which model output column is a rating, a general or a character tag.

Header ``tag_id,name,category,count``; category 9 = rating, 0 = general, 4 = character
(reference/dataset-tools.md §1). Ratings are selected by category, never by position (picobyte
takes ``tags[:4]``). Other categories, if a CSV ever has them, are ignored.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lora_bakery.extension.tagger.errors import TaggerError

RATING, GENERAL, CHARACTER = 9, 0, 4


@dataclass(frozen=True)
class Labels:
    """Tag names and the output indices of each category.

    Attributes:
        names (`tuple[str, ...]`): tag names as in the CSV (underscores), one per model output.
        rating / general / character (`np.ndarray`): int indices into ``names``.
    """

    names: tuple[str, ...]
    rating: np.ndarray
    general: np.ndarray
    character: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def load_labels(path: str | Path) -> Labels:
    """Read a SmilingWolf ``selected_tags.csv``.

    Args:
        path (`str` or `Path`): the CSV file.

    Returns:
        `Labels`: names and category indices.

    Raises:
        TaggerError: missing file, no ``name``/``category`` columns, or a non-integer category.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise TaggerError(f"cannot read {path}: {exc}") from exc
    if not rows or "name" not in rows[0] or "category" not in rows[0]:
        raise TaggerError(f"{path} is not a tagger selected_tags.csv (needs columns name,category)")
    names, categories = [], []
    for line, row in enumerate(rows, start=2):
        try:
            categories.append(int(row["category"]))
        except (TypeError, ValueError):
            raise TaggerError(f"{path}:{line}: category {row['category']!r} is not an integer") from None
        names.append(row["name"])
    cats = np.array(categories)
    return Labels(
        names=tuple(names),
        rating=np.flatnonzero(cats == RATING),
        general=np.flatnonzero(cats == GENERAL),
        character=np.flatnonzero(cats == CHARACTER),
    )
