"""LoRA Bakery: bake LoRAs inside A1111/Forge on the host's loaded model, or standalone.

The package is named ``lora_bakery`` (not ``extension``/``trainer`` at top level) because A1111
runs every extension in one process and other extensions ship top-level ``trainer`` packages.
Importing this package must stay cheap and free of torch/gradio: ``install.py`` imports
``lora_bakery.deps`` before anything is installed.
"""

__version__ = "0.1.0"
