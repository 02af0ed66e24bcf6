"""``bakery demo`` stage ``bake``: 2 epochs of LoRA training on the tiny model.

Trains on the dataset stage's folder (``ctx.artifacts["dataset_dir"]``) with one repeat per image,
or on a generated toy dataset (a trigger and one distinctive look) when that stage did not run.
Writes the epoch file, the final LoRA, the loss plot and one sample image per epoch, and puts the
final file in ``ctx.artifacts["lora"]`` for the stages after it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

TOY_TRIGGER = "sks"


def _subsets(dataset_dir: Path) -> list[dict[str, Any]]:
    """One subset per visible image folder of the dataset stage, one repeat each (a short demo)."""
    return [
        {"image_dir": str(entry), "num_repeats": 1, "class_tokens": entry.name.split("_", 1)[-1]}
        for entry in sorted(dataset_dir.iterdir())
        if entry.is_dir() and not entry.name.startswith(".")
    ]


def make_config(data: dict[str, Any], out: Path, trigger: str) -> Any:
    """The demo's config: tiny network, 2 epochs, 64 px, fp32, one sample prompt per epoch."""
    from lora_bakery.trainer.config import TrainConfig

    return TrainConfig.from_dict({
        "dataset": data,
        "network": {"dim": 4, "alpha": 4},
        "optimizer": {"lr": 3e-3, "scheduler": "constant"},
        "training": {"epochs": 2, "batch_size": 2, "mixed_precision": "no", "seed": 1},
        "saving": {"output_dir": str(out), "output_name": "demo_lora", "overwrite": True, "training_comment": trigger},
        "sampling": {"prompts": [f"{trigger} --d 7 --s 4 --w 64 --h 64"], "every_n_epochs": 1},
    })


def run(ctx: Any) -> dict[str, Any]:
    """The stage: see the module docstring.

    Args:
        ctx (`DemoContext`): ``ctx.host`` (a DiffusersHost on the tiny model) and the artifacts.

    Returns:
        `dict`: ``outputs`` (LoRA files, loss plot, samples), ``steps``, ``images_seen``,
        ``epoch_losses``, ``dataset`` and ``notes``.
    """
    from lora_bakery.cli.train import host_sampler
    from lora_bakery.trainer.loop.toy import make_toy_dataset
    from lora_bakery.trainer.train import train

    stage = ctx.stage_dir("bake")
    out = stage / "out"
    if out.exists():
        shutil.rmtree(out)  # our own output from an earlier run
    dataset_dir = ctx.artifacts.get("dataset_dir")
    if dataset_dir and os.path.isdir(dataset_dir) and _subsets(Path(dataset_dir)):
        data = {"general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128},
                "datasets": [{"subsets": _subsets(Path(dataset_dir))}]}
        trigger, source = ctx.artifacts.get("dataset_trigger", TOY_TRIGGER), "dataset stage"
    else:
        toy = make_toy_dataset(stage / "toy", trigger=TOY_TRIGGER, count=4, repeats=1)
        data = {"train_data_dir": str(toy), "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128}}
        trigger, source = TOY_TRIGGER, "generated toy dataset"
    config = make_config(data, out, trigger)
    import torch

    threads = torch.get_num_threads()
    if getattr(ctx.host, "device", "cpu") == "cpu":
        torch.set_num_threads(1)  # the tiny model's ops are too small to split; extra threads only contend
    try:
        with ctx.host.exclusive():
            result = train(config, ctx.host.model(), sampler=host_sampler(ctx.host), views=ctx.host.views())
    finally:
        torch.set_num_threads(threads)
    (stage / "config.toml").write_text(config.to_toml(), encoding="utf-8")
    ctx.artifacts["lora"] = str(result.final)
    ctx.artifacts["lora_epochs"] = [str(p) for p in result.files]
    outputs = [*result.files, *([result.loss_plot] if result.loss_plot else []), *result.samples, stage / "config.toml"]
    return {
        "outputs": [str(p) for p in outputs],
        "dataset": source,
        "steps": result.steps,
        "images_seen": result.images_seen,
        "epoch_losses": [round(v, 4) for v in result.epoch_losses],
        "seconds": round(result.seconds, 2),
        "notes": result.messages,
    }
