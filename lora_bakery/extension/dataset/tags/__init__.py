"""Caption logic: pure functions on tag lists (no file I/O, no Pillow, no torch).

- :mod:`.parse`: caption text ↔ tag list, with kohya's ``|||`` keep-tokens separator.
- :mod:`.normalize`: underscores/spaces (kaomoji kept), escaped parentheses, case, duplicates.
- :mod:`.match`: tag patterns (exact, ``*`` glob, ``re:`` regex).
- :mod:`.edit`: operations (add triggers, remove, replace, respell, sort by frequency).
- :mod:`.rules`: reviewed, counted proposals and how to apply them.
- :mod:`.consolidate`, :mod:`.synonyms`, :mod:`.prune`: proposal generators.
- :mod:`.stats`: frequency table, filters, caption flags.
- :mod:`.batch`: run an operation over a dataset, report only what changed.

The UI and CLI read the files, call these, and turn the results into a safety ``Plan``.
"""

from lora_bakery.extension.dataset.tags.batch import apply_to_dataset, parse_dataset
from lora_bakery.extension.dataset.tags.parse import KEEP, join_tags, split_tags

__all__ = ["KEEP", "apply_to_dataset", "join_tags", "parse_dataset", "split_tags"]
