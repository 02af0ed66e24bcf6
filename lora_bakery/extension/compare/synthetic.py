"""Random but well-formed LoRA files on a given model, for the demo, tests and benchmarks.

The Compare stage of ``bakery demo`` needs an output folder with epoch files even when the Bake
stage did not run; tests need files of every kind; the benchmark needs full-size SD1.5 LoCons.
All are made with the trainer's own adapters and saver, so they are exactly what a bake writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def randomize_network(network: Any, seed: int = 0, strength: float = 1.0) -> None:
    """Give every adapter parameter non-zero values (fresh adapters have zero deltas).

    Args:
        network (`Network`): from :func:`lora_bakery.trainer.adapters.create_network`.
        seed (`int`, defaults to 0): generator seed (deterministic across runs).
        strength (`float`, defaults to 1.0): scales the random values (epoch *k* of a fake run: growing).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for full_name, param in network.named_parameters():
            name = full_name.rsplit(".", 1)[-1]
            noise = torch.randn(param.shape, generator=generator)
            if name == "dora_scale":
                param.mul_(1.0 + 0.05 * strength * noise)
            elif name == "oft_blocks":
                param.copy_(0.05 * strength * noise)
            elif name == "weight" and param.dim() == 1:  # IA3 gains
                param.copy_(0.1 * strength * noise)
            else:
                fan = max(param[0].numel() if param.dim() > 1 else param.numel(), 1)
                param.copy_(strength * noise / fan**0.5)


def make_epoch_files(
    views: Any,
    folder: str | Path,
    name: str = "demo",
    epochs: int = 3,
    kind: str = "locon",
    options: dict[str, Any] | None = None,
    seed: int = 0,
    precision: str | None = "fp16",
    metadata: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``name-000001.safetensors`` … ``name.safetensors`` as a training run would.

    Epoch ``k`` holds one random network with its linear factor times ``k / epochs``, so block
    norms grow over epochs like a real run's.

    Args:
        views (`ModelViews`): the model the files are for.
        folder (`str | Path`): output folder (created).
        name (`str`, defaults to ``"demo"``): output name (``ss_output_name``).
        epochs (`int`, defaults to 3): number of files; the last has no epoch suffix.
        kind (`str`, defaults to ``"locon"``): adapter kind.
        options (`dict`, *optional*): kind options (defaults: dim 4, alpha 2, conv 2/1 where it applies).
        seed (`int`, defaults to 0): random seed.
        precision (`str`, *optional*, defaults to ``"fp16"``): save precision.
        metadata (`dict[str, str]`, *optional*): extra metadata.

    Returns:
        `list[Path]`: the files, epoch order.
    """
    from lora_bakery.trainer.adapters import create_network, make_options
    from lora_bakery.trainer.saving import base_model_metadata, save_network

    values = dict(options or {"dim": 4, "alpha": 2.0})
    if options is None and kind in ("locon", "loha", "lokr", "dylora"):
        values.update(conv_dim=2, conv_alpha=1.0)
    if options is None and kind == "dylora":
        values["unit"] = 2
    import torch

    network = create_network(views, kind, make_options(kind, **values))
    randomize_network(network, seed=seed)
    base = {k: v.detach().clone() for k, v in network.state_dict().items()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for epoch in range(1, epochs + 1):
        network.load_state_dict(base)
        with torch.no_grad():
            for pname, param in network.named_parameters():
                if pname.endswith(("lora_up.weight", "hada_w1_a", "lokr_w1")):
                    param.mul_(epoch / epochs)
        meta = {
            **base_model_metadata(views.architecture),
            "ss_output_name": name,
            "ss_epoch": str(epoch),
            "ss_steps": str(epoch * 10),
            "ss_num_epochs": str(epochs),
            **(metadata or {}),
        }
        target = folder / (f"{name}.safetensors" if epoch == epochs else f"{name}-{epoch:06d}.safetensors")
        paths.append(save_network(target, network, meta, precision=precision, overwrite=True))
    return paths


__all__ = ["make_epoch_files", "randomize_network"]
