"""Fake ``modules.processing``: the txt2img dataclass, ``Processed`` and ``process_images``.

``StableDiffusionProcessingTxt2Img`` accepts only real field names of A1111 1.10.1 (a typo in
the adapter fails here as it would there). ``process_images`` follows the real control flow the
adapter depends on — seed fixing, ``<lora:...>`` activation through the Lora extension (merging
into the weights in place, under ``torch.no_grad``), ``state.job_count``/``nextjob``/``sampling_step``,
stopping on ``state.interrupted`` — and paints each image a colour derived from (prompt, seed).
Every call is recorded in ``calls`` for assertions.
"""

import dataclasses
import hashlib
import random
import re
import sys
from typing import Any

import torch
from PIL import Image

from . import call_queue, lowvram, shared

calls: list[dict] = []
re_extra_net = re.compile(r"<(\w+):([^>]+)>")  # modules/extra_networks.py


@dataclasses.dataclass(repr=False)
class StableDiffusionProcessing:
    sd_model: Any = None
    outpath_samples: str = None
    outpath_grids: str = None
    prompt: str = ""
    prompt_for_display: str = None
    negative_prompt: str = ""
    styles: list = None
    seed: int = -1
    subseed: int = -1
    subseed_strength: float = 0
    seed_resize_from_h: int = -1
    seed_resize_from_w: int = -1
    seed_enable_extras: bool = True
    sampler_name: str = None
    scheduler: str = None
    batch_size: int = 1
    n_iter: int = 1
    steps: int = 50
    cfg_scale: float = 7.0
    width: int = 512
    height: int = 512
    restore_faces: bool = None
    tiling: bool = None
    do_not_save_samples: bool = False
    do_not_save_grid: bool = False
    extra_generation_params: dict = None
    overlay_images: list = None
    eta: float = None
    do_not_reload_embeddings: bool = False
    denoising_strength: float = None
    override_settings: dict = None
    override_settings_restore_afterwards: bool = True
    sampler_index: int = None
    refiner_checkpoint: str = None
    refiner_switch_at: float = None
    token_merging_ratio = 0
    token_merging_ratio_hr = 0
    disable_extra_networks: bool = False
    scripts_value: Any = None
    script_args_value: list = None

    cached_uc = [None, None]
    cached_c = [None, None]

    def __post_init__(self):
        self.scripts = None
        self.closed = False
        self.cached_uc = StableDiffusionProcessing.cached_uc
        self.cached_c = StableDiffusionProcessing.cached_c

    def close(self):
        self.closed = True


@dataclasses.dataclass(repr=False)
class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    enable_hr: bool = False
    denoising_strength: float = 0.75
    firstphase_width: int = 0
    firstphase_height: int = 0
    hr_scale: float = 2.0
    hr_upscaler: str = None
    hr_second_pass_steps: int = 0
    hr_resize_x: int = 0
    hr_resize_y: int = 0
    hr_checkpoint_name: str = None
    hr_sampler_name: str = None
    hr_scheduler: str = None
    hr_prompt: str = ""
    hr_negative_prompt: str = ""


class Processed:
    def __init__(self, p, images_list, seed=-1, info="", all_prompts=None, all_negative_prompts=None, all_seeds=None, infotexts=None):
        self.images = images_list
        self.prompt = p.prompt
        self.negative_prompt = p.negative_prompt
        self.seed = seed
        self.info = info
        self.width = p.width
        self.height = p.height
        self.sampler_name = p.sampler_name or "DPM++ 2M"
        self.cfg_scale = p.cfg_scale
        self.steps = p.steps
        self.batch_size = p.batch_size
        self.index_of_first_image = 0
        self.all_prompts = all_prompts or [p.prompt]
        self.all_negative_prompts = all_negative_prompts or [p.negative_prompt]
        self.all_seeds = all_seeds or [seed]
        self.infotexts = infotexts or [info]


def _color(prompt, seed):
    digest = hashlib.sha256(f"{prompt}|{seed}".encode()).digest()
    return digest[0], digest[1], digest[2]


def _weights_checksum(sd_model):
    with torch.no_grad():
        return float(sum(p.double().sum() for p in sd_model.parameters()))


def process_images(p):
    state = shared.state
    networks = sys.modules.get("networks")
    record = {
        "prompt": p.prompt, "negative_prompt": p.negative_prompt, "seed": p.seed, "width": p.width, "height": p.height,
        "steps": p.steps, "cfg_scale": p.cfg_scale, "sampler_name": p.sampler_name, "batch_size": p.batch_size,
        "n_iter": p.n_iter, "do_not_save_samples": p.do_not_save_samples, "do_not_save_grid": p.do_not_save_grid,
        "sd_model_is_shared": p.sd_model is shared.sd_model, "cached_c_is_class_cache": p.cached_c is StableDiffusionProcessing.cached_c,
        "queue_lock_held": call_queue.queue_lock.locked(), "loras": [], "missing_loras": [],
    }
    calls.append(record)

    seed = int(random.randrange(4294967294)) if p.seed in (-1, None) else int(p.seed)
    prompt_without_tags = re_extra_net.sub("", p.prompt).strip()
    loras = []
    for name, args in re_extra_net.findall(p.prompt):
        if name not in ("lora", "lyco"):
            continue
        parts = args.split(":")
        te = float(parts[1]) if len(parts) > 1 else 1.0
        unet = float(parts[2]) if len(parts) > 2 else te
        loras.append((parts[0], te, unet))
    if not p.disable_extra_networks and networks is not None:
        record["missing_loras"] = networks.load_networks([n for n, _, _ in loras], [t for _, t, _ in loras], [u for _, _, u in loras])
        record["loras"] = [(net.name, net.te_multiplier, net.unet_multiplier, net.network_on_disk.filename) for net in networks.loaded_networks]

    if state.job_count == -1:
        state.job_count = p.n_iter
    images, seeds, infotexts = [], [], []
    with torch.no_grad():
        for n in range(p.n_iter):
            if state.interrupted or state.stopping_generation:
                break
            state.sampling_steps = p.steps
            for step in range(p.steps):
                if state.interrupted:
                    break
                state.sampling_step = step
            if getattr(p.sd_model, "lowvram", False):  # the modules run, so lowvram's hooks move them
                lowvram.run_like_generation(p.sd_model)
            if networks is not None:  # the patched forward of every layer
                for module in p.sd_model.modules():
                    networks.network_apply_weights(module)
            record["weights_checksum_during"] = _weights_checksum(p.sd_model)
            for i in range(p.batch_size):
                s = seed + n * p.batch_size + i
                images.append(Image.new("RGB", (p.width, p.height), _color(prompt_without_tags, s)))
                seeds.append(s)
                infotexts.append(f"{p.prompt}\nNegative prompt: {p.negative_prompt}\nSteps: {p.steps}, "
                                 f"Sampler: {p.sampler_name or 'DPM++ 2M'}, CFG scale: {p.cfg_scale}, Seed: {s}, "
                                 f"Size: {p.width}x{p.height}")
            state.nextjob()
    return Processed(p, images, seed=seed, info=infotexts[0] if infotexts else "",
                     all_prompts=[p.prompt] * len(images), all_negative_prompts=[p.negative_prompt] * len(images),
                     all_seeds=seeds, infotexts=infotexts)


def reset():
    calls.clear()
    StableDiffusionProcessing.cached_c = [None, None]
    StableDiffusionProcessing.cached_uc = [None, None]
