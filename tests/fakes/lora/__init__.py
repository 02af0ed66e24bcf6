"""Fake of A1111 1.10.1's built-in Lora extension modules (``extensions-builtin/Lora``), installed
as ``sys.modules["networks"]`` / ``sys.modules["network"]`` like the real ones after script loading."""
