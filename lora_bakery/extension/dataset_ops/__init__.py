"""Dataset operations by name, shared by the Dataset tab, ``bakery dataset``/``bakery tag`` and the API.

The logic lives in ``extension/dataset`` (files, images: plans with backup and undo),
``extension/dataset/tags`` (pure caption edits) and ``extension/tagger``; this package joins them
to the files of one training folder and gives every operation one name and one ``params`` dict, so
the three front ends cannot drift apart:

- :mod:`.captions`: read every caption of a scanned folder, turn edited texts into a ``Plan``.
- :mod:`.caption_ops`: the caption editor's batch operations (triggers, remove, prune …).
- :mod:`.registry`: every operation by name → ``preview`` / ``apply`` / ``undo``.
- :mod:`.params`: options from JSON, argparse or gradio values, with errors naming the option.
- :mod:`.report`: scan, bucket and plan summaries as rows and text.

Import-light: nothing here imports gradio, torch or onnxruntime at import time.
"""
