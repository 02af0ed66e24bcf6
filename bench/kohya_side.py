"""The kohya half of ``bench/vs_kohya.py``'s interop check; runs in kohya's venv, imports only its code.

    python bench/kohya_side.py WORK/interop.json

Reads ``interop.json`` (written by ``bench/kohya_interop.py``: checkpoint, inputs file, the LoRA
files with the loader each goes through) and loads the checkpoint the way ``train_network.py``
does (``model_util.load_models_from_stable_diffusion_checkpoint``, fp32, SDPA). For each file:

* ``kohya``: ``networks.lora.create_network_from_weights(..., for_inference=True)``, applied;
* ``lycoris``: ``lycoris.kohya.create_network_from_weights`` (LyCORIS's kohya entry point), applied.

Each network's ``load_state_dict(strict=False)`` reports missing and unexpected keys; the U-Net
output (fixed latents, timestep, text embeddings) and the text encoder's last hidden state (fixed
token ids) are saved per file, then the network is switched off (exactly: its modules return the
original forward). Last, ``merged``: our trained file merged into the weights with kohya's
``merge_to``, and the outputs once more. Writes ``kohya-outputs.safetensors`` and ``kohya-keys.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def outputs(unet, text_encoder, inputs: dict) -> tuple:
    import torch

    with torch.no_grad():
        u = unet(inputs["latents"], inputs["timestep"], inputs["context"]).sample
        t = text_encoder(inputs["input_ids"])[0]
    return u.float().contiguous(), t.float().contiguous()


def _keys(info) -> dict:
    missing, unexpected = info
    return {"missing": sorted(missing), "unexpected": sorted(unexpected)}


def main(plan_path: str) -> None:
    import torch
    from library import model_util
    from safetensors.torch import load_file, save_file

    plan = json.loads(Path(plan_path).read_text())
    work = Path(plan_path).parent
    torch.manual_seed(0)
    text_encoder, vae, unet = model_util.load_models_from_stable_diffusion_checkpoint(
        False, plan["checkpoint"], "cpu", torch.float32)
    unet.set_use_sdpa(True)
    unet.eval()
    text_encoder.eval()
    inputs = load_file(plan["inputs"])
    results, report = {}, {}
    results["base.unet"], results["base.te"] = outputs(unet, text_encoder, inputs)
    for item in plan["files"]:
        label, path, loader = item["label"], item["path"], item["loader"]
        if loader == "lycoris":
            from lycoris.kohya import create_network_from_weights
        else:
            from networks.lora import create_network_from_weights
        kwargs = {"for_inference": True} if loader == "kohya" else {}
        network, weights = create_network_from_weights(1.0, path, vae, text_encoder, unet, **kwargs)
        if loader == "lycoris":
            network.weights_sd = None  # its apply_to would load them itself; load below to see the keys
        network.apply_to(text_encoder, unet, apply_text_encoder=True, apply_unet=True)
        info = network.load_state_dict(weights, strict=False)
        network.eval()
        report[label] = {**_keys(info), "modules": len(network.text_encoder_loras) + len(network.unet_loras),
                         "file_layers": len({k.split(".")[0] for k in weights})}
        results[f"{label}.unet"], results[f"{label}.te"] = outputs(unet, text_encoder, inputs)
        if loader == "lycoris":
            network.restore()
        else:
            network.set_enabled(False)
    merge = next((f for f in plan["files"] if f.get("merge")), None)
    if merge:
        from networks.lora import create_network_from_weights

        weights = load_file(merge["path"])
        network, _ = create_network_from_weights(1.0, merge["path"], vae, text_encoder, unet, weights_sd=weights,
                                                 for_inference=True)
        network.merge_to(text_encoder, unet, weights, torch.float32, "cpu")
        results[f"{merge['label']}-merged.unet"], results[f"{merge['label']}-merged.te"] = outputs(
            unet, text_encoder, inputs)
    save_file(results, str(work / "kohya-outputs.safetensors"))
    (work / "kohya-keys.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
