"""Training data: folders, buckets, captions, datasets and latent caching.

Import-light on purpose: the Dataset tab imports :mod:`.folders` and :mod:`.buckets` (pure Python)
without paying for torch; modules that need torch import it themselves.
"""
