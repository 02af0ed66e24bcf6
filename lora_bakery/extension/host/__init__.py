"""The host boundary: the only package that touches A1111/Forge internals.

``base`` holds the protocol and its plain data types; ``a1111`` adapts a running A1111;
``diffusers_host`` is the standalone host. Implementations are imported lazily so that importing
this package needs neither torch nor a webui.
"""

from .base import (
    GeneratedImage,
    GenerationRequest,
    Host,
    HostError,
    LoraSpec,
    ModelParts,
    NullProgress,
    Progress,
)

__all__ = [
    "GeneratedImage",
    "GenerationRequest",
    "Host",
    "HostError",
    "LoraSpec",
    "ModelParts",
    "NullProgress",
    "Progress",
]
