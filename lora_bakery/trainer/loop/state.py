"""Resumable training state, stored without pickle: safetensors for tensors, JSON for the rest.

A state folder holds ``train_state.json`` (kohya's ``current_epoch``/``current_step`` plus the
position inside the epoch, the loss history and the config), ``network.tensors`` (the adapters
in fp32), ``optimizer.tensors`` + the optimizer's scalars and groups in the JSON, the scheduler
state, and every random state the loop draws from (torch CPU/CUDA, the noise generator, Python,
NumPy). Restoring all of it makes a resumed run step for step equal to an uninterrupted one.
The folder is written beside its final place and renamed into it, so a crash never leaves half a state.

The tensor files are safetensors, named ``.tensors``: the folder usually sits in the webui's
``models/Lora`` tree, and A1111, Forge and ComfyUI list every ``.safetensors``/``.pt``/``.ckpt`` there
as a LoRA (they would show ``network``, ``optimizer`` and ``rng``). No loader lists ``.tensors``.
States written before (``*.safetensors``) still resume.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_VERSION = 1
STATE_FILE = "train_state.json"
#: Extension of the tensor files (safetensors content; see the module docstring for why not ``.safetensors``).
TENSORS = ".tensors"


def _tensor_file(folder: Path, name: str) -> Path:
    """``folder/name.tensors``, or the ``.safetensors`` name of states saved by earlier versions."""
    path = folder / f"{name}{TENSORS}"
    legacy = folder / f"{name}.safetensors"
    return legacy if not path.is_file() and legacy.is_file() else path


@dataclass
class LoopPosition:
    """Where the loop is: ``epoch`` (from 1) and ``batch`` = batches of that epoch already done."""

    epoch: int = 1
    batch: int = 0
    step: int = 0
    images_seen: int = 0
    losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _json_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in the training state")


def _optimizer_parts(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"scalars": scalars, "param_groups": state["param_groups"]}


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    current = optimizer.state_dict()
    if len(current["param_groups"]) != len(meta["param_groups"]):
        raise ValueError("the saved optimizer has a different number of parameter groups")
    groups = []
    for live, saved in zip(current["param_groups"], meta["param_groups"]):
        group = dict(live)
        for key, value in saved.items():
            if key == "params":
                continue
            group[key] = tuple(value) if isinstance(live.get(key), tuple) else value
        groups.append(group)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, _, name = key.partition(".")
        state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _rng_state(generator: torch.Generator | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{i}"] = s
    if generator is not None:
        tensors["noise"] = generator.get_state()
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any], generator: torch.Generator | None) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda_"))]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if generator is not None and "noise" in tensors:
        generator.set_state(tensors["noise"])
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))


def _save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    # safetensors' own save_file creates files 0600; written through open() they get the umask's mode
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in tensors.items()})
    with open(path, "wb") as stream:
        stream.write(data)


def save_state(
    folder: str | os.PathLike,
    position: LoopPosition,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator | None,
    scaler: Any = None,
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a complete resumable state to ``folder`` (replaced atomically if it exists).

    Args:
        folder (`str | PathLike`): the state folder, e.g. ``output/name-state``.
        position (`LoopPosition`): where the loop is.
        network (`torch.nn.Module`): the adapters.
        optimizer (`torch.optim.Optimizer`): the optimizer.
        scheduler (`LRScheduler`): the learning-rate scheduler.
        generator (`torch.Generator`, *optional*): the loop's noise generator.
        scaler (`GradScaler`, *optional*): fp16 loss scaler.
        config (`dict`, *optional*): the run's config, for checks on resume.

    Returns:
        `Path`: the folder.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
    staging.mkdir()  # the umask's mode, like the rest of the output (mkdtemp would make it private)
    try:
        _save_tensors(staging / f"network{TENSORS}", dict(network.state_dict()))
        opt_tensors, opt_meta = _optimizer_parts(optimizer)
        _save_tensors(staging / f"optimizer{TENSORS}", opt_tensors or {"_empty": torch.zeros(0)})
        rng_tensors, rng_meta = _rng_state(generator)
        _save_tensors(staging / f"rng{TENSORS}", rng_tensors)
        data = {
            "bakery_state_version": STATE_VERSION,
            "current_epoch": position.epoch,
            "current_step": position.step,
            "batch_in_epoch": position.batch,
            "images_seen": position.images_seen,
            "losses": position.losses,
            "epoch_losses": position.epoch_losses,
            "files": position.files,
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_meta,
            "config": config or {},
        }
        (staging / STATE_FILE).write_text(json.dumps(data, default=_json_default), encoding="utf-8")
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(staging, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def read_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The JSON part of a state folder (to check it before building anything).

    Raises:
        ValueError: not a LoRA Bakery state folder, or a newer format.
    """
    path = Path(folder) / STATE_FILE
    if not path.is_file():
        raise ValueError(f"{folder} is not a training state folder (no {STATE_FILE}); choose the '-state' folder a run saved")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("bakery_state_version", 0) > STATE_VERSION:
        raise ValueError(f"{folder} was saved by a newer LoRA Bakery; update it to resume")
    return data


def load_state(
    folder: str | os.PathLike,
    network: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generator: torch.Generator | None,
    scaler: Any = None,
) -> LoopPosition:
    """Restore everything :func:`save_state` wrote into freshly built objects of the same run.

    Returns:
        `LoopPosition`: where to continue.

    Raises:
        ValueError: the folder is not a state, or does not fit this network/optimizer.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    data = read_state(folder)
    weights = load_file(str(_tensor_file(folder, "network")))
    try:
        network.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{folder}: the saved network does not fit this config ({exc})") from None
    opt_tensors = {k: v for k, v in load_file(str(_tensor_file(folder, "optimizer"))).items() if k != "_empty"}
    _load_optimizer(optimizer, opt_tensors, data["optimizer"])
    if scheduler is not None and data.get("scheduler") is not None:
        scheduler.load_state_dict(data["scheduler"])
    if scaler is not None and data.get("scaler"):
        scaler.load_state_dict(data["scaler"])
    _set_rng_state(load_file(str(_tensor_file(folder, "rng"))), data["rng"], generator)
    return LoopPosition(
        epoch=int(data["current_epoch"]),
        batch=int(data["batch_in_epoch"]),
        step=int(data["current_step"]),
        images_seen=int(data.get("images_seen", 0)),
        losses=list(data.get("losses", [])),
        epoch_losses=list(data.get("epoch_losses", [])),
        files=list(data.get("files", [])),
    )
