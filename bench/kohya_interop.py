"""Our half of ``bench/vs_kohya.py``'s interop check (our venv); ``bench/kohya_side.py`` is kohya's.

    python bench/kohya_interop.py WORK CHECKPOINT TOKENIZER_DIR OURS_FILE KOHYA_RUN_DIR

One load of the checkpoint in our standalone host (``DiffusersHost``, the Compare tab's and the
CLI's), then:

1. **Files we write** for kohya and LyCORIS to read: the trained ``OURS_FILE`` (U-Net LoRA), plus a
   LoCon and a LoHa (text encoder + U-Net, 3x3 convs) and a LoKr (no 3x3 convs, see ``SYNTHETIC``), each made by ``create_network`` over
   the views with random weights and saved by ``save_network`` (the trainer's saver, fp32).
2. **Our outputs** with each of those files and with kohya's final file: the file is loaded by
   ``build_file_network`` (the adapter code that trains, as the host applies LoRAs for Compare
   grids) and applied; U-Net output and text-encoder last hidden state on fixed inputs.
3. **kohya's run in our Compare path**: epoch discovery (``list_epochs`` on kohya's output folder),
   block analysis (``bakery blocks norms`` on it), and a 64 px, 1-step epoch grid (``run_grid``).

Writes ``interop.json`` (the plan ``kohya_side.py`` follows), ``inputs.safetensors``,
``ours-outputs.safetensors`` and ``compare.json`` into WORK.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import sys
from pathlib import Path

# Synthetic files: kind -> (options, std of the random weights). The stds make each delta a few
# percent of the layer's output, so a wrong formula or scale shows far above float noise.
# LoKr without 3x3 convs: LyCORIS 3.4.0's make_module_from_state_dict takes a conv's in_dim from
# lokr_w2_b's width, kernel included, so where w1 is not square (SD1.5's up_blocks.2.resnets.0.conv1,
# 1920 -> 640, w1 20x40) it picks the wrong factor and fails on its own modules' state dicts too.
SYNTHETIC = {"locon": ({"dim": 16, "alpha": 8.0, "conv_dim": 8, "conv_alpha": 4.0}, 0.02),
             "loha": ({"dim": 16, "alpha": 8.0, "conv_dim": 8, "conv_alpha": 4.0}, 0.08),
             "lokr": ({"dim": 16, "alpha": 8.0}, 0.05)}
LOADERS = {"locon": "kohya", "loha": "lycoris", "lokr": "lycoris"}


def write_synthetic(views, kind: str, path: Path) -> Path:
    """A ``kind`` network over text encoder + U-Net with N(0, std) weights, saved by our saver (fp32)."""
    import torch

    from lora_bakery.trainer.adapters import create_network, make_options
    from lora_bakery.trainer.saving.files import save_network

    options, std = SYNTHETIC[kind]
    network = create_network(views, kind, make_options(kind, **options))
    gen = torch.Generator().manual_seed(len(kind))
    with torch.no_grad():
        for p in network.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return save_network(path, network, precision="float", overwrite=True, add_hashes=False)


def make_inputs(tokenizer, path: Path) -> dict:
    """Fixed U-Net and text-encoder inputs, shared with kohya's side through a file."""
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(7)
    ids = tokenizer(["sks, disc, a photo of a red circle"], padding="max_length", max_length=77, truncation=True,
                    return_tensors="pt").input_ids
    inputs = {"latents": torch.randn(1, 4, 8, 8, generator=gen), "timestep": torch.tensor([321]),
              "context": torch.randn(1, 77, 768, generator=gen), "input_ids": ids.to(torch.int64)}
    save_file(inputs, str(path))
    return inputs


def outputs(views, inputs: dict) -> tuple:
    import torch

    with torch.no_grad():
        u = views.unet(inputs["latents"], inputs["timestep"], encoder_hidden_states=inputs["context"]).sample
        t = views.text_encoders[0](inputs["input_ids"])[0]
    return u.float().contiguous(), t.float().contiguous()


def compare_path(host, run_dir: Path, work: Path) -> dict:
    """kohya's output folder through our Compare tab's code: epochs, block norms, a small grid."""
    from lora_bakery.cli import main as cli
    from lora_bakery.extension.compare import Axis, GridSpec, list_epochs, load_presets, run_grid

    epochs = list_epochs(run_dir)
    report: dict = {"files": [e.summary() for e in epochs], "labels": [e.label for e in epochs]}
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        rc = cli(["blocks", "--json", "norms", str(run_dir), "--out", str(work / "kohya-norms.png")])
    norms = json.loads(stdout.getvalue()) if rc == 0 else {}
    values = norms.get("values") or []
    report["norms"] = {"rc": rc, "labels": norms.get("labels"), "blocks": norms.get("blocks"),
                       "skipped": norms.get("skipped"),
                       "nonzero_blocks": [sum(1 for row in values if row[i] and math.isfinite(row[i]))  # per file
                                          for i in range(len(norms.get("labels") or []))]}
    spec = GridSpec(prompt="sks, disc", negative_prompt="", lora=None, weight=1.0, blocks=None, seed=1, width=64,
                    height=64, steps=1, cfg_scale=7.0, sampler=None, x=Axis("epoch", [str(e.path) for e in epochs],
                                                                               [e.label for e in epochs]),
                    y=None, z=None, presets=load_presets(None))
    grid = run_grid(host, spec, work / "kohya-grid")
    report["grid"] = {"cells": len(grid.cells), "png": str(grid.grid), "exists": Path(grid.grid).is_file(),
                      "interrupted": grid.interrupted}
    return report


def main(work: str, checkpoint: str, tokenizer_dir: str, ours_file: str, run_dir: str) -> None:
    from safetensors.torch import save_file

    from lora_bakery.extension.compare import list_epochs
    from lora_bakery.extension.host.diffusers_host import DiffusersHost
    from lora_bakery.extension.host.diffusers_lora import build_file_network
    from lora_bakery.trainer.saving.files import load_network

    folder = Path(work)
    folder.mkdir(parents=True, exist_ok=True)
    host = DiffusersHost(checkpoint, tokenizer_dir=tokenizer_dir, device="cpu")
    views = host.views()
    inputs = make_inputs(host.model().tokenizers[0], folder / "inputs.safetensors")
    kohya_final = next(e.path for e in reversed(list_epochs(run_dir)) if e.final)
    files = [{"label": "ours-trained", "path": ours_file, "loader": "kohya", "merge": True},
             *({"label": f"ours-{kind}", "path": str(write_synthetic(views, kind, folder / f"ours-{kind}.safetensors")),
                "loader": LOADERS[kind]} for kind in SYNTHETIC),
             {"label": "kohya-trained", "path": str(kohya_final), "loader": "kohya"}]
    files.sort(key=lambda f: f["loader"] == "lycoris")  # kohya's loader first: LyCORIS's restore() goes last
    results = {}
    results["base.unet"], results["base.te"] = outputs(views, inputs)
    for item in files:
        tensors, metadata = load_network(item["path"])
        network = build_file_network(views, tensors, metadata)
        network.apply()
        try:
            results[f"{item['label']}.unet"], results[f"{item['label']}.te"] = outputs(views, inputs)
        finally:
            network.remove()
    save_file(results, str(folder / "ours-outputs.safetensors"))
    plan = {"checkpoint": checkpoint, "inputs": str(folder / "inputs.safetensors"), "files": files}
    (folder / "interop.json").write_text(json.dumps(plan, indent=1))
    (folder / "compare.json").write_text(json.dumps(compare_path(host, Path(run_dir), folder), indent=1, default=str))


if __name__ == "__main__":
    main(*sys.argv[1:6])
