"""The three trainers ``bench/gpu.py`` compares, each run in a process of its own.

* ``ours``: the host's load (the single file read onto the device in its own dtype, as the webui
  holds it), zero-copy views over those tensors, then ``train()`` end to end: captions, cached
  latents, buckets, the text encoder run every step, loss pipeline, saving.
* ``bare``: what a diffusers training script does at its leanest: one ``UNet2DConditionModel`` in
  the weight dtype, ``add_adapter(LoraConfig)`` (peft), random latents and text embeddings made
  once (as if both were cached), noise, MSE, backward, AdamW. No data pipeline, no text encoder,
  no VAE: a floor, not a trainer.
* ``kohya``: kohya's own ``train_network.py`` / ``sdxl_train_network.py``, unmodified, run under
  ``bench/step_clock.py`` (same clock as the other two).

Every side trains the same LoRA: rank 16, alpha 8, on kohya's default U-Net targets (attention
q/k/v/out, proj_in/out, feed-forward), text encoder frozen, AdamW lr 1e-4, grad-norm clip 1.0,
same resolution, batch and step count; bf16 autocast over bf16 base weights on CUDA, fp32 on CPU.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
RANK, ALPHA, LR = 16, 8, 1e-4


def _precision(case: dict) -> str:
    return case.get("precision") or ("bf16" if case["device"] == "cuda" else "no")


def run_ours(case: dict) -> dict[str, Any]:
    """Our trainer on views over the host's tensors, one ``train()`` per variant of the case.

    The host's load happens once (as in the webui); each variant (batch size, CUDA graphs on/off)
    is a whole ``train()`` on it. Returns row name → the clock's summary and notes.
    """
    import torch
    from step_clock import StepClock

    from lora_bakery.trainer.config import TrainConfig
    from lora_bakery.trainer.loop.checkpoint import load_checkpoint
    from lora_bakery.trainer.models import build_views
    from lora_bakery.trainer.train import train

    parts = load_checkpoint(case["ckpt"], case["device"], case["tokenizer"])  # the host's own load
    views = build_views(parts.parameters, parts.architecture)
    cuda = case["device"] == "cuda"
    weights = torch.cuda.memory_allocated() if cuda else 0
    before = _fingerprint(parts.parameters)
    rows: dict[str, Any] = {}
    for variant in case["variants"]:
        config = TrainConfig.from_dict({
            "dataset": {"train_data_dir": case["data_root"], "general": {
                "resolution": case["resolution"], "min_bucket_reso": min(256, case["resolution"]),
                "max_bucket_reso": max(1024, case["resolution"])}},
            "network": {"dim": RANK, "alpha": ALPHA, "train_text_encoder": False},
            "optimizer": {"type": "adamw", "lr": LR, "scheduler": "constant", "max_grad_norm": 1.0},
            "training": {"max_steps": case["steps"], "mixed_precision": _precision(case), "batch_size": variant["batch"],
                         "cache_latents": True, "seed": 0, "cuda_graphs": variant.get("graphs", True),
                         **({variant["saver"]: True} if variant.get("saver") else {})},
            "saving": {"output_dir": case["out"], "output_name": variant["row"], "save_every_n_epochs": 0,
                       "overwrite": True},
            "logging": {"tensorboard": False, "loss_plot": False},
        })
        clock = StepClock.install()
        try:
            result = train(config, parts, views=views)
        except Exception as exc:  # one row failing must not lose the others
            clock.remove()
            rows[variant["row"]] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"ours {variant['row']}: {rows[variant['row']]['error']}", flush=True)
            continue
        summary = clock.summary(case["warmup"])
        clock.remove()
        estimate = next((m for m in result.messages if m.startswith("memory: this bake needs")), "")
        found = re.search(r"needs ≈ ([0-9.]+) GiB", estimate)
        summary.update(weights=weights, status=result.status, losses=result.losses,
                       notes=[m for m in result.messages if "graph" in m.lower() or "trained parameters" in m
                              or m is estimate][:6],
                       estimate_gib=float(found.group(1)) if found else None,
                       host_unchanged=_fingerprint(parts.parameters) == before)
        if cuda:  # what the job left allocated beyond the host's own weights
            summary["leftover_vram"] = torch.cuda.memory_allocated() - weights
        rows[variant["row"]] = summary
        print(f"ours {variant['row']}: {summary['step']['median']:.4f} s/step; " + " | ".join(summary["notes"]), flush=True)
    if case.get("profile"):  # a short extra run, warmed up, under the profiler
        config.training.max_steps = case["profile"]
        _profiled(lambda: train(config, parts, views=views), case)
    return rows


def _fingerprint(parameters: Any) -> list[int]:
    """A bitwise fingerprint of the host's tensors (their raw bits summed as integers, per tensor)."""
    import torch

    out = []
    for key in sorted(parameters):
        t = parameters[key]
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bits = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]
            out.append(int(t.detach().contiguous().view(bits).sum(dtype=torch.int64)))
    return out


def _unet_inputs(case: dict, config: dict, device: str, dtype: Any) -> tuple[Any, Any, Any]:
    """Random latents, text embeddings and (SDXL) added conditioning: what a cache would hold."""
    import torch

    b, side = case["batch"], case["resolution"] // 8
    latents = torch.randn(b, 4, side, side, device=device)
    context = torch.randn(b, 77, config["cross_attention_dim"], device=device, dtype=dtype)
    added = None
    if config.get("addition_embed_type") == "text_time":
        pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        added = {"text_embeds": torch.randn(b, pooled, device=device, dtype=dtype),
                 "time_ids": torch.tensor([[case["resolution"]] * 2 + [0, 0] + [case["resolution"]] * 2] * b,
                                          device=device, dtype=dtype)}
    return latents, context, added


def run_bare(case: dict) -> dict[str, Any]:
    """The bare diffusers + peft loop, one timed loop per batch size; FLOPs counted at ``flops_batch``."""
    import diffusers
    import torch
    from fullsize import full_configs
    from peft import LoraConfig
    from step_clock import StepClock

    from lora_bakery.trainer.tiny import tiny_configs

    device = case["device"]
    dtype = torch.bfloat16 if _precision(case) == "bf16" else torch.float32
    config = dict((tiny_configs if case["tiny"] else full_configs)(case["arch"]).unet)
    with torch.device(device):
        unet = diffusers.UNet2DConditionModel(**config).to(dtype)
    weights = torch.cuda.memory_allocated() if device == "cuda" else 0
    unet.requires_grad_(False)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, init_lora_weights="gaussian", target_modules=TARGETS))
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    optimizer = torch.optim.AdamW(params, lr=LR)
    scheduler = diffusers.DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                                        beta_schedule="scaled_linear")
    autocast = torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32)
    unet.train()
    layers = sum(1 for n, _ in unet.named_modules() if n.endswith("lora_A"))
    rows: dict[str, Any] = {}
    for variant in case["variants"]:
        if not variant.get("graphs", True) or variant.get("saver"):
            continue  # the eager-vs-graphs pair and the VRAM savers are ours only
        latents, context, added = _unet_inputs(dict(case, batch=variant["batch"]), config, device, dtype)

        def step(latents: Any = latents, context: Any = context, added: Any = added) -> float:
            noise = torch.randn_like(latents)
            t = torch.randint(0, 1000, (latents.shape[0],), device=device)
            noisy = scheduler.add_noise(latents, noise, t)
            with autocast:
                pred = unet(noisy, t, context, added_cond_kwargs=added).sample
            loss = torch.nn.functional.mse_loss(pred.float(), noise)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return float(loss.detach())

        clock = StepClock.install()
        loss = float("nan")
        for _ in range(case["steps"]):
            loss = step()
        summary = clock.summary(case["warmup"])
        clock.remove()
        summary.update(weights=weights, status="done", final_loss=loss, notes=[f"{layers} peft LoRA layers"])
        if variant["batch"] == case.get("flops_batch"):
            from torch.utils.flop_counter import FlopCounterMode

            counter = FlopCounterMode(display=False)
            with counter:
                step()
            summary["flops_per_step"] = counter.get_total_flops()
        rows[variant["row"]] = summary
        print(f"bare {variant['row']}: {summary['step']['median']:.4f} s/step", flush=True)
        if case.get("profile"):
            _profiled(lambda: [step() for _ in range(case["profile"])], case)
    return rows


def _profiled(fn: Any, case: dict) -> Any:
    """Run ``fn`` under torch.profiler and print the ops that took the most device (or CPU) time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if case["device"] == "cuda" else [])
    with profile(activities=activities) as prof:
        out = fn()
    key = "self_cuda_time_total" if case["device"] == "cuda" else "self_cpu_time_total"
    try:
        print(prof.key_averages().table(sort_by=key, row_limit=18, max_name_column_width=60), flush=True)
    except Exception as exc:  # profiler column names change between torch releases
        print(f"(profile table unavailable: {exc})", flush=True)
    return out


def kohya_args(case: dict) -> list[str]:
    """kohya's command line for the same run (script path first)."""
    kohya = Path(case["kohya_dir"])
    sdxl = case["arch"] == "sdxl"
    args = [
        str(kohya / ("sdxl_train_network.py" if sdxl else "train_network.py")),
        "--pretrained_model_name_or_path", case["ckpt"],
        "--dataset_config", case["kohya_dataset"],
        "--output_dir", case["out"], "--output_name", "kohya", "--save_model_as", "safetensors",
        "--network_module", "networks.lora", "--network_dim", str(RANK), "--network_alpha", str(ALPHA),
        "--network_train_unet_only",
        "--optimizer_type", "AdamW", "--learning_rate", str(LR), "--lr_scheduler", "constant", "--max_grad_norm", "1.0",
        "--max_train_steps", str(case["steps"]), "--seed", "0",
        "--mixed_precision", _precision(case), "--cache_latents", "--sdpa",
        "--max_data_loader_n_workers", "0", "--tokenizer_cache_dir", case["kohya_tokenizers"],
    ]
    if sdxl:
        args.append("--cache_text_encoder_outputs")
    return args


def kohya_dataset_toml(case: dict, image_dir: Path) -> str:
    """kohya's dataset config for the case (square images, so no buckets are needed)."""
    return (
        "[general]\nenable_bucket = false\ncaption_extension = \".txt\"\nshuffle_caption = false\n\n"
        f"[[datasets]]\nresolution = {case['resolution']}\nbatch_size = {case['batch']}\n\n"
        f"  [[datasets.subsets]]\n  image_dir = \"{image_dir.as_posix()}\"\n  num_repeats = {case['repeats']}\n"
    )
