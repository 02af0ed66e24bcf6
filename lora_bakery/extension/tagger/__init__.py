"""WD14 / WD v3 ONNX image taggers (SmilingWolf layout: ``model.onnx`` + ``selected_tags.csv``).

Import-light on purpose: onnxruntime, numpy and Pillow are imported by the submodules that need
them, so listing the Dataset tab does not load them.

- ``labels``: ``selected_tags.csv`` → which output column is a rating, general or character tag.
- ``preprocess``: the exact SmilingWolf preprocessing (white pad to square, bicubic, BGR, 0..255).
- ``postprocess``: thresholds, MCut, underscores/kaomoji, escaping, exclusion, union of taggers.
- ``models``: known repositories, local folders, downloads through huggingface_hub.
- ``session``: onnxruntime session with CUDA→CPU fallback, input size and batch dimension.
- ``engine``: decode in threads while inference runs, batches, progress and interrupt.
- ``captions``: skip/overwrite/prepend/append into ``.txt`` captions, as a ``dataset.safety.Plan``.
- ``workflow``: ``TagSettings`` + ``tag_dataset``: the one call for CLI, UI, API and demo.
- ``onnx_writer`` + ``tiny``: a tiny real ONNX tagger for tests, the demo and benchmarks.
"""
