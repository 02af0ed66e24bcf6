"""The one exception type of the tagger package."""

from __future__ import annotations


class TaggerError(RuntimeError):
    """A problem the user can fix (missing model files, bad CSV, offline download). The message says how."""
