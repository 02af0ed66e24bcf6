"""The Host protocol: everything the rest of LoRA Bakery may ask of the webui (or of diffusers).

Only ``lora_bakery.extension.host`` imports A1111/Forge internals. Every other layer receives a
``Host`` and speaks to it through the types below, so the same training, reg-image and compare
code runs inside A1111 and standalone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # torch/PIL are only needed by implementations, not to import this module
    import torch
    from PIL import Image

Architecture = Literal["sd1", "sd2", "sdxl"]
Prediction = Literal["eps", "v"]


class HostError(RuntimeError):
    """A problem the user can fix (missing tokenizer, no model loaded...). The message says how."""


@dataclass
class ModelParts:
    """The host's loaded model as the trainer sees it.

    Attributes:
        architecture (`str`): ``"sd1"``, ``"sd2"`` or ``"sdxl"``.
        prediction (`str`): ``"eps"`` or ``"v"``.
        parameters (`Mapping[str, torch.Tensor]`): the loaded weights under their **original
            checkpoint keys** (LDM/SGM layout, e.g. ``model.diffusion_model.input_blocks.0.0.weight``),
            as the very tensor objects the host computes with, never copies.
        tokenizers (`list`): one CLIP tokenizer per text encoder (two for SDXL).
        checkpoint_name (`str`): file name of the checkpoint, as the host shows it.
        checkpoint_path (`str`, *optional*): full path when known.
        checkpoint_hash (`str`, *optional*): sha256 (hex) of the checkpoint file when known.
        legacy_hash (`str`, *optional*): A1111's 8-hex legacy hash when known.
        clip_skip (`int`, defaults to 1): the host's clip-skip setting.
        placement (`HostPlacement`, *optional*): set when the host keeps its model off the GPU
            between uses (A1111 --medvram/--lowvram); see ``lora_bakery.trainer.placement``.
    """

    architecture: Architecture
    prediction: Prediction
    parameters: Mapping[str, torch.Tensor]
    tokenizers: list[Any] = field(default_factory=list)
    checkpoint_name: str = ""
    checkpoint_path: str | None = None
    checkpoint_hash: str | None = None
    legacy_hash: str | None = None
    clip_skip: int = 1
    placement: Any = None


@dataclass
class LoraSpec:
    """A LoRA file to apply during one generation.

    Attributes:
        path (`str`): the ``.safetensors`` file, wherever it is (never copied into a Lora folder).
        te (`float`, defaults to 1.0): text-encoder multiplier.
        unet (`float`, *optional*): U-Net multiplier; ``None`` means the same as ``te``.
        block_weights (`Sequence[float]`, *optional*): lbw-style per-block ratios.
    """

    path: str
    te: float = 1.0
    unet: float | None = None
    block_weights: Sequence[float] | None = None


@dataclass
class GenerationRequest:
    """One txt2img job. ``seed=-1`` means random; the result reports the seed actually used."""

    prompt: str
    negative_prompt: str = ""
    seed: int = -1
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str | None = None
    batch_size: int = 1
    loras: list[LoraSpec] = field(default_factory=list)


@dataclass
class GeneratedImage:
    image: Image.Image
    seed: int
    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    cfg_scale: float
    sampler: str
    infotext: str = ""



@dataclass(frozen=True)
class ServerFacts:
    """How the host's web server was started: who may reach it and with which credentials.

    Facts only; ``extension/api_gates.py`` decides what they mean for the ``/bakery/v1`` routes.

    Attributes:
        api_auth (`str`, *optional*): the API credentials as given (A1111 ``--api-auth``: ``u:p,u2:p2``).
        listen (`bool`): ``--listen`` (binds 0.0.0.0).
        share (`bool`): ``--share`` (a public gradio link).
        ngrok (`bool`): ``--ngrok`` (a public tunnel).
        server_name (`str`, *optional*): ``--server-name``.
        insecure_extension_access (`bool`): ``--enable-insecure-extension-access``.
        data_folders (`tuple[str, ...]`): the host's own data folders (Lora models, outputs).
    """

    api_auth: str | None = None
    listen: bool = False
    share: bool = False
    ngrok: bool = False
    server_name: str | None = None
    insecure_extension_access: bool = False
    data_folders: tuple[str, ...] = ()

@runtime_checkable
class Progress(Protocol):
    """How long work reports progress and learns it should stop.

    In A1111 this is ``shared.state`` (progress bar, live preview, Interrupt button); in the CLI a
    tqdm bar and a flag set by Ctrl-C; in the standalone app a job record polled by the UI.
    """

    def begin(self, total: int, text: str = "") -> None: ...

    def step(self, n: int = 1, text: str | None = None) -> None: ...

    def preview(self, image: Image.Image) -> None: ...

    @property
    def interrupted(self) -> bool: ...

    def end(self) -> None: ...


@runtime_checkable
class Host(Protocol):
    """What the rest of LoRA Bakery may ask of the webui."""

    name: str

    def model(self) -> ModelParts:
        """The loaded model's parameters in checkpoint key layout (no copies)."""
        ...

    def generate(self, requests: Sequence[GenerationRequest], progress: Progress | None = None) -> list[GeneratedImage]:
        """Run txt2img for each request, with its LoRAs applied only for that request."""
        ...

    @property
    def progress(self) -> Progress:
        """The host's progress reporter for the current job."""
        ...

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Own the GPU: serialise against the host's own jobs, clear loaded networks, restore all on exit."""
        ...


class NullProgress:
    """A Progress that records nothing and is never interrupted (library use, tests)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.text = ""
        self._interrupted = False

    def begin(self, total: int, text: str = "") -> None:
        self.total, self.done, self.text = total, 0, text

    def step(self, n: int = 1, text: str | None = None) -> None:
        self.done += n
        if text is not None:
            self.text = text

    def preview(self, image: Image.Image) -> None:
        pass

    @property
    def interrupted(self) -> bool:
        return self._interrupted

    def interrupt(self) -> None:
        self._interrupted = True

    def end(self) -> None:
        pass


@contextlib.contextmanager
def no_exclusive() -> Iterator[None]:
    """An ``exclusive()`` for hosts that own nothing shared."""
    yield
