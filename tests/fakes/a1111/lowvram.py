"""Fake ``modules.lowvram`` (A1111 1.10.1): the same hooks on the same modules, moving them with ``.to()``.

What the real module does, restated for the fake's (already hijacked) model:

- ``setup_for_low_vram(sd_model, use_medvram)`` sets ``sd_model.lowvram = True``; the VAE
  (``first_stage_model``), ``model`` (the DiffusionWrapper around ``diffusion_model``), the text
  model (SD1: ldm ``FrozenCLIPEmbedder.transformer``; SDXL: the whole ``conditioner``) and the
  optional ``depth_model``/``embedder`` are detached while the rest of ``sd_model`` goes to
  ``devices.device``, then put back (so they stay on the CPU).
- A forward pre-hook ``send_me_to_gpu`` on each of them moves the module (SD1: the transformer's
  parent, the ldm embedder) to ``devices.device`` and the previous one (``module_in_gpu``) to the
  CPU. The VAE's ``encode``/``decode`` are replaced by wrappers doing the same, because ldm calls
  those, not ``forward``.
- ``--lowvram`` (``use_medvram=False``): instead of ``model`` as a whole, each of
  ``diffusion_model.input_blocks[i]``, ``middle_block``, ``output_blocks[i]`` and ``time_embed`` is
  hooked and kept on the CPU, while the rest of ``model`` goes to the device.
- ``send_everything_to_cpu()`` moves ``module_in_gpu`` to the CPU and forgets it.

A1111 installs this before ``sd_hijack`` wraps ``cond_stage_model``; in the fake (built hijacked) the
same module objects are reached through ``cond_stage_model.wrapped``. ``devices.device`` is read at
call time: tests point it at a second device (see ``tests/fakes/fake_gpu.py``).
"""

import torch

from . import devices, shared

module_in_gpu = None
cpu = torch.device("cpu")


def send_everything_to_cpu():
    global module_in_gpu
    if module_in_gpu is not None:
        module_in_gpu.to(cpu)
    module_in_gpu = None


def is_needed(sd_model):
    opts = shared.cmd_opts
    return bool(opts.lowvram or opts.medvram or (getattr(opts, "medvram_sdxl", False) and hasattr(sd_model, "conditioner")))


def apply(sd_model):
    if is_needed(sd_model):
        setup_for_low_vram(sd_model, not shared.cmd_opts.lowvram)
    else:
        sd_model.lowvram = False


def is_enabled(sd_model):
    return sd_model.lowvram


def setup_for_low_vram(sd_model, use_medvram):
    if getattr(sd_model, "lowvram", False):
        return
    sd_model.lowvram = True
    parents = {}

    def send_me_to_gpu(module, _):
        global module_in_gpu
        module = parents.get(module, module)
        if module_in_gpu == module:
            return
        if module_in_gpu is not None:
            module_in_gpu.to(cpu)
        module.to(devices.device)
        module_in_gpu = module

    vae = sd_model.first_stage_model
    vae_encode, vae_decode = vae.encode, vae.decode

    def encode_wrap(x):
        send_me_to_gpu(vae, None)
        return vae_encode(x)

    def decode_wrap(z):
        send_me_to_gpu(vae, None)
        return vae_decode(z)

    is_sdxl = hasattr(sd_model, "conditioner")
    ldm_cond = None if is_sdxl else getattr(sd_model.cond_stage_model, "wrapped", sd_model.cond_stage_model)
    keep_on_cpu = [(sd_model, "first_stage_model"), (sd_model, "depth_model"), (sd_model, "embedder"), (sd_model, "model")]
    keep_on_cpu.append((sd_model, "conditioner") if is_sdxl else (ldm_cond, "transformer"))
    if is_sdxl:  # the hijack registered cond_stage_model as a second name of the conditioner
        keep_on_cpu.append((sd_model, "cond_stage_model"))
    stored = []
    for owner, name in keep_on_cpu:
        stored.append(getattr(owner, name, None))
        setattr(owner, name, None)
    sd_model.to(devices.device)
    for (owner, name), module in zip(keep_on_cpu, stored):
        setattr(owner, name, module)

    if is_sdxl:
        sd_model.conditioner.register_forward_pre_hook(send_me_to_gpu)
    else:
        ldm_cond.transformer.register_forward_pre_hook(send_me_to_gpu)
        parents[ldm_cond.transformer] = ldm_cond
    vae.register_forward_pre_hook(send_me_to_gpu)
    vae.encode, vae.decode = encode_wrap, decode_wrap
    if sd_model.depth_model:
        sd_model.depth_model.register_forward_pre_hook(send_me_to_gpu)
    if sd_model.embedder:
        sd_model.embedder.register_forward_pre_hook(send_me_to_gpu)

    if use_medvram:
        sd_model.model.register_forward_pre_hook(send_me_to_gpu)
        return
    unet = sd_model.model.diffusion_model
    held = unet.input_blocks, unet.middle_block, unet.output_blocks, unet.time_embed
    unet.input_blocks = unet.middle_block = unet.output_blocks = unet.time_embed = None
    sd_model.model.to(devices.device)
    unet.input_blocks, unet.middle_block, unet.output_blocks, unet.time_embed = held
    unet.time_embed.register_forward_pre_hook(send_me_to_gpu)
    for block in unet.input_blocks.children():  # a ModuleList in ldm: iterating it is children()
        block.register_forward_pre_hook(send_me_to_gpu)
    unet.middle_block.register_forward_pre_hook(send_me_to_gpu)
    for block in unet.output_blocks.children():
        block.register_forward_pre_hook(send_me_to_gpu)


def run_like_generation(sd_model):
    """What ``process_images`` does to the placement: text model, then the U-Net, then the VAE decode
    (the fake's layers have no ``forward``, so the pre-hooks are called as ``Module.__call__`` would)."""

    def fire(module):
        for hook in list(module._forward_pre_hooks.values()):
            hook(module, ())

    if hasattr(sd_model, "conditioner"):
        fire(sd_model.conditioner)
    else:
        fire(getattr(sd_model.cond_stage_model, "wrapped", sd_model.cond_stage_model).transformer)
    fire(sd_model.model)
    unet = sd_model.model.diffusion_model
    for module in [unet.time_embed, *unet.input_blocks.children(), unet.middle_block, *unet.output_blocks.children()]:
        fire(module)
    sd_model.first_stage_model.decode(None)


def reset():
    global module_in_gpu
    module_in_gpu = None
