"""An onnxruntime session over one tagger folder, with its labels and input geometry.

Names and shapes are read from the model (every tool does: ``sess.get_inputs()[0]``), never
assumed. The batch dimension decides batching: symbolic → any batch; a positive int (some v2
exports are fixed at 1) → chunks of that size, the last one padded (kohya PR #864).

Providers: CUDA when this onnxruntime build has it, then CPU. A CUDA provider that is listed but
cannot load (missing cuDNN/CUDA libraries) makes onnxruntime fall back to CPU silently apart
from a log line; ``TaggerModel.notes`` says so in words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lora_bakery.extension.tagger.errors import TaggerError
from lora_bakery.extension.tagger.labels import Labels, load_labels
from lora_bakery.extension.tagger.models import LABELS_FILE, MODEL_FILE
from lora_bakery.extension.tagger.postprocess import Thresholds

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
DEFAULT_SIZE = 448


@dataclass
class TaggerModel:
    """A loaded tagger.

    Attributes:
        name (`str`): display name (the folder name unless given).
        session: the ``onnxruntime.InferenceSession``.
        labels (`Labels`): from ``selected_tags.csv``.
        input_name / output_name (`str`): as the model declares them.
        size (`int`): input height = width.
        batch (`int`, *optional*): fixed batch size, or `None` when dynamic.
        thresholds (`Thresholds`): how this tagger selects tags.
        providers (`list[str]`): the providers the session really uses.
        notes (`list[str]`): things the user should know (CUDA fallback…).
    """

    name: str
    session: object
    labels: Labels
    input_name: str
    output_name: str
    size: int
    batch: int | None
    thresholds: Thresholds = field(default_factory=Thresholds)
    providers: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities ``[N, num_tags]`` for an NHWC float32 batch of any N.

        A fixed-batch model runs in chunks of its batch size; the last chunk is zero-padded and the
        padding's rows dropped.
        """
        step = self.batch or len(batch)
        outputs = []
        for start in range(0, len(batch), max(step, 1)):
            chunk = batch[start : start + step]
            real = len(chunk)
            if self.batch and real < self.batch:
                pad = np.zeros((self.batch - real,) + chunk.shape[1:], chunk.dtype)
                chunk = np.concatenate([chunk, pad])
            out = self.session.run([self.output_name], {self.input_name: chunk})[0]
            outputs.append(np.asarray(out, dtype=np.float32)[:real])
        return np.concatenate(outputs) if outputs else np.zeros((0, len(self.labels)), np.float32)


def _providers(requested: Sequence[str] | None, available: Sequence[str]) -> tuple[list[str], list[str]]:
    notes = []
    if requested is None:
        return ([CUDA, CPU] if CUDA in available else [CPU]), notes
    chosen = [p for p in requested if p in available]
    for p in requested:
        if p not in available:
            notes.append(f"{p} is not available in this onnxruntime build ({', '.join(available)}); skipped")
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen, notes


def _session(path: Path, providers: list[str], threads: int | None, notes: list[str]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only; we explain fallbacks ourselves
    # Idle intra-op threads sleep instead of spinning: the decoding threads need those cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:
        if providers == [CPU]:
            raise TaggerError(f"onnxruntime cannot load {path}: {exc}".splitlines()[0]) from exc
        notes.append(f"{providers[0]} failed to start ({exc}); running on CPU".splitlines()[0])
        return _session(path, [CPU], threads, notes)


def _geometry(session, path: Path) -> tuple[str, str, int, int | None, int]:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise TaggerError(f"{path} has {len(inputs)} inputs; a WD tagger has one image input")
    shape = list(inputs[0].shape)
    if len(shape) != 4 or shape[3] != 3:
        raise TaggerError(f"{path}: input {inputs[0].name} has shape {shape}; a WD tagger takes NHWC [N, H, W, 3]")
    size = shape[1] if isinstance(shape[1], int) and shape[1] > 0 else DEFAULT_SIZE
    batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else None
    width = outputs[0].shape[-1] if outputs[0].shape else None
    return inputs[0].name, outputs[0].name, size, batch, width if isinstance(width, int) else -1


def load_tagger(
    folder: str | Path,
    *,
    name: str | None = None,
    thresholds: Thresholds | None = None,
    providers: Sequence[str] | None = None,
    threads: int | None = None,
) -> TaggerModel:
    """Open ``model.onnx`` + ``selected_tags.csv`` of a tagger folder.

    Args:
        folder (`str` or `Path`): from ``models.resolve_model``.
        name (`str`, *optional*): display name; defaults to the folder name.
        thresholds (`Thresholds`, *optional*): defaults to ``Thresholds()`` (0.35 / 0.85).
        providers (`Sequence[str]`, *optional*): onnxruntime providers in order of preference;
            default CUDA (when present) then CPU. Unavailable ones are skipped with a note.
        threads (`int`, *optional*): intra-op threads (onnxruntime's default: all cores).

    Returns:
        `TaggerModel`: ready to ``predict``.

    Raises:
        TaggerError: unreadable model, a non-NHWC input, or a CSV whose length differs from the output.
    """
    import onnxruntime as ort

    folder = Path(folder)
    labels = load_labels(folder / LABELS_FILE)
    chosen, notes = _providers(providers, ort.get_available_providers())
    session = _session(folder / MODEL_FILE, chosen, threads, notes)
    actual = list(session.get_providers())
    if CUDA in chosen and CUDA not in actual:
        notes.append("CUDAExecutionProvider did not load (CUDA/cuDNN libraries missing?); running on CPU")
    input_name, output_name, size, batch, width = _geometry(session, folder / MODEL_FILE)
    if width not in (-1, len(labels)):
        raise TaggerError(f"{folder}: model outputs {width} tags but {LABELS_FILE} has {len(labels)} rows")
    return TaggerModel(
        name=name or folder.name,
        session=session,
        labels=labels,
        input_name=input_name,
        output_name=output_name,
        size=size,
        batch=batch,
        thresholds=thresholds or Thresholds(),
        providers=actual,
        notes=notes,
    )
