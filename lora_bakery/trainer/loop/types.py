"""What the training loop gives back and how it reports: result, errors, callbacks, progress.

``trainer/`` must not import ``lora_bakery.extension``, so the Host's ``Progress`` protocol is
restated here structurally: any object with ``begin``/``step``/``preview``/``interrupted``/``end``
works (A1111's ``shared.state`` adapter, the CLI's tqdm sink, a job record, ``NullProgress``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from PIL import Image


@runtime_checkable
class ProgressLike(Protocol):
    """The Host's ``Progress`` as the trainer needs it (structural; ``log(text)`` is optional)."""

    def begin(self, total: int, text: str = "") -> None: ...

    def step(self, n: int = 1, text: str | None = None) -> None: ...

    def preview(self, image: Image.Image) -> None: ...

    @property
    def interrupted(self) -> bool: ...

    def end(self) -> None: ...


class QuietProgress:
    """A progress that shows nothing and is never interrupted (library use)."""

    interrupted = False

    def begin(self, total: int, text: str = "") -> None:
        pass

    def step(self, n: int = 1, text: str | None = None) -> None:
        pass

    def preview(self, image: Any) -> None:
        pass

    def end(self) -> None:
        pass


class TrainError(RuntimeError):
    """Training stopped for a reason the user can act on; the message says what to do.

    Attributes:
        result (`TrainResult`, *optional*): what was done before the stop (files kept, losses).
        reason (`str`): ``"nan"``, ``"oom"``, ``"data"``, ``"config"``, ``"state"`` or ``"error"``.
    """

    def __init__(self, message: str, *, reason: str = "error", result: TrainResult | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.result = result


@dataclass
class SamplePrompt:
    """One sample image request, parsed from kohya's prompt syntax.

    The field names equal ``GenerationRequest``'s, so a caller turns it into a host request with
    ``GenerationRequest(**dataclasses.asdict(p))``.
    """

    prompt: str
    negative_prompt: str = ""
    seed: int = 1234
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str | None = None


@dataclass
class StepInfo:
    """What callbacks see after each optimizer step / epoch.

    Attributes:
        epoch (`int`): current epoch, from 1.
        step (`int`): optimizer steps done.
        images_seen (`int`): images processed (the "steps" users count).
        loss (`float`): loss of the last optimizer step (mean over its micro-batches).
        lr (`float`): learning rate of the first parameter group.
        network (`Any`): the adapter network (callbacks may inspect it; tests may corrupt it).
    """

    epoch: int
    step: int
    images_seen: int
    loss: float
    lr: float
    network: Any = None


class TrainCallbacks:
    """Hooks a caller may override (the UI draws live charts from them). All no-ops by default."""

    def on_step_end(self, info: StepInfo) -> None:
        """After every optimizer step."""

    def on_epoch_end(self, info: StepInfo, files: list[Path]) -> None:
        """After every epoch, once its files (if any) are written."""


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        status (`str`): ``"finished"`` (all epochs, or ``max_steps`` reached) or ``"interrupted"``.
        final (`Path`, *optional*): the final ``name.safetensors`` (absent when interrupted).
        files (`list[Path]`): every LoRA file written and still present, in order.
        interrupted_file (`Path`, *optional*): the file written when the run was interrupted.
        state_dir (`Path`, *optional*): the last resumable state folder written.
        epochs_done (`int`): complete epochs.
        steps (`int`): optimizer steps.
        images_seen (`int`): images processed ("steps" as users count them).
        total_steps (`int`): optimizer steps planned.
        losses (`list[float]`): loss per optimizer step.
        epoch_losses (`list[float]`): mean loss per epoch.
        loss_plot (`Path`, *optional*): the loss curve PNG.
        samples (`list[Path]`): sample images written.
        messages (`list[str]`): notes for the log (what was left out, precision fallbacks, skipped features...).
        skipped (`list[tuple[Path, str]]`): every image left out before the first step, with the reason.
        seconds (`float`): wall time of the loop.
    """

    status: str = "finished"
    final: Path | None = None
    files: list[Path] = field(default_factory=list)
    interrupted_file: Path | None = None
    state_dir: Path | None = None
    epochs_done: int = 0
    steps: int = 0
    images_seen: int = 0
    total_steps: int = 0
    losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    loss_plot: Path | None = None
    samples: list[Path] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    seconds: float = 0.0
