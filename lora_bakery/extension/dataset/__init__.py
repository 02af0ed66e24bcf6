"""Dataset tools: scan, image prep, duplicates, masks, repeats, with plan → preview → apply → undo.

Plain Python + Pillow/numpy (no torch). Every operation that changes user files returns a
:class:`~lora_bakery.extension.dataset.safety.Plan`; only :mod:`.safety` touches the files, and it
takes a backup first so that every change can be undone byte for byte.
"""
