"""Epoch files of a training output folder, found where they are (never copied).

kohya names them ``<name>-000001.safetensors`` … and the last one ``<name>.safetensors``
(step saves: ``<name>-step00000100.safetensors``). Each is listed with the metadata a user picks
an epoch by: epoch and step numbers, network type/dim/alpha, base model, and the file's hash.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

_EPOCH = re.compile(r"^(?P<name>.+)-(?P<num>\d{6})$")
_STEP = re.compile(r"^(?P<name>.+)-step(?P<num>\d{8})$")


@dataclass
class EpochFile:
    """One network file of a run.

    Attributes:
        path (`Path`): the file.
        name (`str`): the output name (stem without the epoch/step suffix).
        epoch (`int | None`): epoch number (``None`` for a step save without ``ss_epoch``).
        step (`int | None`): step number when known (``ss_steps`` or a step file name).
        final (`bool`): the file without a suffix (the run's last save).
        metadata (`dict[str, str]`): the safetensors ``__metadata__``.
        step_save (`bool`): named by its step (``-step00000100``): labelled by the step, since
            kohya writes the 0-based running epoch into a step save's ``ss_epoch`` (several step
            saves of one epoch would all read ``e0``).
    """

    path: Path
    name: str
    epoch: int | None
    step: int | None
    final: bool
    metadata: dict[str, str] = field(default_factory=dict)
    step_save: bool = False

    @property
    def label(self) -> str:
        """Short label for grids: ``e3``, ``s1200`` or ``final (e10)``."""
        by_step = self.step is not None and (self.step_save or self.epoch is None)
        core = f"s{self.step}" if by_step else f"e{self.epoch}" if self.epoch is not None else self.path.stem
        return f"final ({core})" if self.final and core != self.path.stem else core

    def summary(self) -> dict[str, str]:
        """Table row: file, epoch, step, network, base model, hash."""
        meta = self.metadata
        net = meta.get("ss_network_module", "")
        dim = meta.get("ss_network_dim", "")
        alpha = meta.get("ss_network_alpha", "")
        return {
            "file": self.path.name,
            "epoch": "" if self.epoch is None else str(self.epoch),
            "step": "" if self.step is None else str(self.step),
            "network": f"{net} {dim}/{alpha}".strip(),
            "base": meta.get("ss_base_model_version", ""),
            "hash": meta.get("sshs_model_hash", "")[:12],
        }


def read_metadata(path: str | Path) -> dict[str, str]:
    """A safetensors file's ``__metadata__`` from its header only (no tensor is read).

    Returns an empty dict for unreadable files.
    """
    try:
        with open(path, "rb") as stream:
            (length,) = struct.unpack("<Q", stream.read(8))
            if length > 100_000_000:
                return {}
            header = json.loads(stream.read(length))
    except (OSError, ValueError, struct.error):
        return {}
    meta = header.get("__metadata__") or {}
    return {str(k): str(v) for k, v in meta.items()}


def _int(value: str | None) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def epoch_file(path: str | Path) -> EpochFile:
    """One network file, named the way kohya names epoch saves (or not): its :class:`EpochFile`.

    Used for every file of a run folder, and for a single file given on its own (``bakery compare
    FILE --list``). Only the header is read.
    """
    path = Path(path)
    stem = path.stem
    meta = read_metadata(path)
    m_epoch, m_step = _EPOCH.match(stem), _STEP.match(stem)
    if m_epoch:
        return EpochFile(path, m_epoch["name"], int(m_epoch["num"]), _int(meta.get("ss_steps")), False, meta)
    if m_step:
        return EpochFile(path, m_step["name"], _int(meta.get("ss_epoch")), int(m_step["num"]), False, meta, step_save=True)
    return EpochFile(path, stem, _int(meta.get("ss_epoch")), _int(meta.get("ss_steps")), True, meta)


def list_epochs(folder: str | Path, name: str | None = None) -> list[EpochFile]:
    """Every ``.safetensors`` network of a run folder, epoch order (the final file last).

    Args:
        folder (`str | Path`): the training output folder (not searched recursively).
        name (`str`, *optional*): keep only this output name; by default every name is listed.

    Returns:
        `list[EpochFile]`: sorted by output name, then epoch/step, the final file after its epochs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    files = [epoch_file(path) for path in sorted(folder.glob("*.safetensors"))]
    if name is not None:
        files = [f for f in files if f.name == name]

    def order(f: EpochFile) -> tuple:
        return (f.name, f.final, f.epoch if f.epoch is not None else -1, f.step if f.step is not None else -1)

    return sorted(files, key=order)


def latest_run(folder: str | Path) -> list[EpochFile]:
    """The epoch files of the output name whose final (or newest) file was written last."""
    files = list_epochs(folder)
    if not files:
        return []
    newest = max(files, key=lambda f: f.path.stat().st_mtime)
    return [f for f in files if f.name == newest.name]


__all__ = ["EpochFile", "epoch_file", "latest_run", "list_epochs", "read_metadata"]
