"""A reference LoRA loader written from AUTOMATIC1111 1.10.1's documented behaviour (tests only).

``merge_network(checkpoint, file_tensors, te, unet)`` returns the checkpoint with the file merged
as A1111's built-in Lora extension merges it; see :mod:`.a1111_loader` and :mod:`.a1111_modules`.
"""

from .a1111_loader import convert_diffusers_name_to_compvis, layer_mapping, load_network, merge_network

__all__ = ["convert_diffusers_name_to_compvis", "layer_mapping", "load_network", "merge_network"]
