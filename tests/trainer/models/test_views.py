"""Views share the host's storage and compute exactly what diffusers' own converter computes."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from torch.testing import assert_close
from transformers import CLIPTokenizer

from lora_bakery.trainer.models import build_views

from . import oracle

YAML = {"sd15": oracle.SD15_YAML, "sdxl": oracle.SDXL_YAML}
CONTEXT = {"sd15": 64, "sdxl": 192}


@pytest.fixture(scope="module", params=["sd15", "sdxl"])
def case(request, tiny_sd15_path, tiny_sdxl_path):
    path = tiny_sd15_path if request.param == "sd15" else tiny_sdxl_path
    checkpoint = load_file(str(path))
    return request.param, path, checkpoint, build_views(checkpoint)


def _storages(tensors) -> set[int]:
    return {t.untyped_storage().data_ptr() for t in tensors}


def _modules(views):
    return [views.unet, views.vae, *views.text_encoders]


def _unet_inputs(arch: str):
    g = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, 8, 8, generator=g)
    context = torch.randn(2, 77, CONTEXT[arch], generator=g)
    kwargs = {}
    if arch == "sdxl":
        time_ids = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0], [96.0, 64.0, 8.0, 0.0, 64.0, 64.0]])
        kwargs["added_cond_kwargs"] = {"text_embeds": torch.randn(2, 128, generator=g), "time_ids": time_ids}
    return sample, torch.tensor([10, 700]), context, kwargs


def _unet_out(unet, arch: str) -> torch.Tensor:
    sample, timesteps, context, kwargs = _unet_inputs(arch)
    with torch.no_grad():
        return unet(sample, timesteps, context, **kwargs).sample


def _vae_out(vae) -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latent = vae.encode(image).latent_dist.mean
        return latent, vae.decode(latent).sample


def _ids(path) -> torch.Tensor:
    tokenizer = CLIPTokenizer.from_pretrained(str(path.parent / "tokenizer"), local_files_only=True)
    prompts = ["a photo of a cat", "a dog"]
    return tokenizer(prompts, padding="max_length", max_length=77, return_tensors="pt").input_ids


def _text_out(model, ids):
    with torch.no_grad():
        return model(ids, output_hidden_states=True)


def test_every_view_parameter_shares_host_storage(case):
    arch, _, checkpoint, views = case
    host = _storages(checkpoint.values())
    params = [p for m in _modules(views) for p in m.parameters()]
    assert params and all(p.untyped_storage().data_ptr() in host for p in params)
    assert views.report.total == views.report.shared == len(params)
    assert views.report.copied == [] and views.report.messages == []
    assert views.report.extra_bytes == 0
    assert 0 < views.report.buffer_bytes < 4096  # only position_ids buffers
    assert all(not p.requires_grad for p in params)
    assert not any(m.training for m in _modules(views))
    assert views.architecture == {"sd15": "sd1", "sdxl": "sdxl"}[arch]
    # Every weight in the file backs some view (only the non-weight extras are left over).
    used = {p.untyped_storage().data_ptr() for p in params}
    unused = {k for k, t in checkpoint.items() if t.untyped_storage().data_ptr() not in used}
    assert unused <= {"alphas_cumprod"} | {k for k in checkpoint if k.endswith("position_ids")}


def test_unet_matches_diffusers_single_file_converter(case):
    arch, _, checkpoint, views = case
    reference = oracle.unet(checkpoint, YAML[arch])
    ours = _unet_out(views.unet, arch)
    assert_close(ours, _unet_out(reference, arch), rtol=1e-5, atol=1e-5)
    assert ours.abs().mean() > 1e-2  # weights are non-trivial: a wrong mapping would show


def test_vae_matches_diffusers_single_file_converter(case):
    arch, _, checkpoint, views = case
    reference = oracle.vae(checkpoint, YAML[arch])
    (latent, image), (ref_latent, ref_image) = _vae_out(views.vae), _vae_out(reference)
    assert_close(latent, ref_latent, rtol=1e-5, atol=1e-5)
    assert_close(image, ref_image, rtol=1e-5, atol=1e-5)
    assert views.vae.config.scaling_factor == {"sd15": 0.18215, "sdxl": 0.13025}[arch]


def test_text_encoders_match_diffusers_single_file_converter(case):
    arch, path, checkpoint, views = case
    ids = _ids(path)
    vocab = checkpoint[next(k for k in checkpoint if k.endswith("token_embedding.weight"))].shape[0]
    references = [oracle.clip(checkpoint, vocab)]
    if arch == "sdxl":
        references.append(oracle.open_clip(checkpoint, vocab))
    assert len(views.text_encoders) == len(references)
    for ours, reference in zip(views.text_encoders, references):
        a, b = _text_out(ours, ids), _text_out(reference, ids)
        assert_close(a.last_hidden_state, b.last_hidden_state, rtol=1e-5, atol=1e-5)
        for x, y in zip(a.hidden_states, b.hidden_states):
            assert_close(x, y, rtol=1e-5, atol=1e-5)
    if arch == "sdxl":  # pooled, projected output of bigG (SDXL's text_embeds)
        a, b = _text_out(views.text_encoders[1], ids), _text_out(references[1], ids)
        assert_close(a.text_embeds, b.text_embeds, rtol=1e-5, atol=1e-5)
        assert a.text_embeds.shape == (2, 128)


def test_inference_tensors_are_copied_once_and_still_match(case):
    arch, path, checkpoint, views = case
    with torch.inference_mode():
        inference = load_file(str(path))
    assert all(t.is_inference() for t in inference.values())
    copied = build_views(inference)
    report = copied.report
    assert report.copied and len(report.copied) == len(set(report.copied))
    assert report.shared == 0 and report.total == views.report.total
    assert "inference" in report.messages[0]
    weights = sum(inference[k].numel() * inference[k].element_size() for k in report.copied)
    assert report.extra_bytes == weights
    # Same values; not always the same bits: a contiguous copy of a strided view can take another
    # kernel (seen with one OpenMP thread), which sums in another order.
    assert_close(_unet_out(copied.unet, arch), _unet_out(views.unet, arch), rtol=1e-5, atol=1e-5)
    ids = _ids(path)
    for a, b in zip(copied.text_encoders, views.text_encoders):
        assert_close(_text_out(a, ids).last_hidden_state, _text_out(b, ids).last_hidden_state, rtol=1e-5, atol=1e-5)
    # The copies can join autograd, which inference tensors cannot.
    sample, timesteps, context, kwargs = _unet_inputs(arch)
    sample.requires_grad_(True)
    copied.unet(sample, timesteps, context, **kwargs).sample.square().mean().backward()
    assert sample.grad is not None and torch.isfinite(sample.grad).all()


def test_backward_flows_through_frozen_views_and_host_is_untouched(tiny_sd15_path):
    checkpoint = load_file(str(tiny_sd15_path))
    host = {
        k: torch.nn.Parameter(v, requires_grad=True) for k, v in checkpoint.items() if v.is_floating_point()
    }
    before = {k: v.detach().clone() for k, v in host.items()}
    views = build_views(host)
    sample, timesteps, context, _ = _unet_inputs("sd15")
    context.requires_grad_(True)
    views.unet(sample, timesteps, context).sample.square().mean().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0
    assert all(p.grad is None for p in host.values())
    assert all(host[k].requires_grad for k in host)  # the host's own flags are left alone
    assert all(torch.equal(host[k], before[k]) for k in host)


def test_views_built_inside_inference_mode_still_join_autograd(tiny_sd15_path):
    checkpoint = load_file(str(tiny_sd15_path))
    with torch.inference_mode():
        views = build_views(checkpoint)
    assert views.report.shared == views.report.total and not views.report.copied
    modules = _modules(views)
    assert not any(t.is_inference() for m in modules for t in [*m.parameters(), *m.buffers()])
    sample, timesteps, context, _ = _unet_inputs("sd15")
    sample.requires_grad_(True)
    views.unet(sample, timesteps, context).sample.mean().backward()
    assert sample.grad is not None


def test_views_keep_host_dtype(tiny_sd15_path):
    checkpoint = {
        k: v.half() if v.is_floating_point() else v for k, v in load_file(str(tiny_sd15_path)).items()
    }
    views = build_views(checkpoint, "sd1")
    assert {p.dtype for m in _modules(views) for p in m.parameters()} == {torch.float16}
    assert views.report.shared == views.report.total


def test_missing_weights_are_listed(tiny_sd15_path):
    checkpoint = load_file(str(tiny_sd15_path))
    del checkpoint["first_stage_model.decoder.mid.attn_1.q.weight"]
    del checkpoint["model.diffusion_model.out.2.bias"]
    with pytest.raises(ValueError, match=r"2 weights .* missing.*decoder\.mid\.attn_1\.q\.weight"):
        build_views(checkpoint)


def test_missing_shape_source_is_a_value_error(tiny_sd15_path):
    checkpoint = load_file(str(tiny_sd15_path))
    del checkpoint["model.diffusion_model.time_embed.0.weight"]
    with pytest.raises(ValueError, match="time_embed.0.weight"):
        build_views(checkpoint)


def test_inconsistent_shapes_are_reported(tiny_sd15_path):
    checkpoint = load_file(str(tiny_sd15_path))
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"
    checkpoint[key] = checkpoint[key][:16]
    with pytest.raises(ValueError, match="attn1.to_q.weight"):
        build_views(checkpoint)


def test_sd2_is_detected_but_not_built():
    checkpoint = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.empty(320, 4, 3, 3, device="meta"),
        "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": torch.empty(
            3072, 1024, device="meta"
        ),
    }
    with pytest.raises(NotImplementedError, match="SD2"):
        build_views(checkpoint)


def test_peft_lora_trains_on_views_and_leaves_host_bitwise_equal(tiny_sd15_path):
    from peft import LoraConfig, inject_adapter_in_model

    checkpoint = load_file(str(tiny_sd15_path))
    before = {k: v.clone() for k, v in checkpoint.items()}
    views = build_views(checkpoint)
    base = _unet_out(views.unet, "sd15")
    config = LoraConfig(
        r=4, lora_alpha=4, init_lora_weights="gaussian", target_modules=["to_q", "to_k", "to_v"]
    )
    unet = inject_adapter_in_model(config, views.unet)
    trainable = [p for p in unet.parameters() if p.requires_grad]
    assert trainable and all("lora" in n for n, p in unet.named_parameters() if p.requires_grad)
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    sample, timesteps, context, _ = _unet_inputs("sd15")
    unet.train()
    for _ in range(2):
        loss = unet(sample, timesteps, context).sample.square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    unet.eval()
    assert not torch.equal(_unet_out(unet, "sd15"), base)
    assert all(torch.equal(checkpoint[k], before[k]) for k in checkpoint)


def test_concurrent_view_builds_leave_no_meta_patch(tiny_sd15_path):
    """accelerate's init_empty_weights patches nn.Module for the whole process; two overlapping
    builds (a job thread and a UI thread) used to leave the patch on, so every later module,
    e.g. a LoRA network, got meta weights. Builds are serialised now."""
    import threading

    original = torch.nn.Module.register_parameter
    state = load_file(str(tiny_sd15_path))
    errors: list[BaseException] = []

    def build() -> None:
        try:
            for _ in range(3):
                build_views(state)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert torch.nn.Module.register_parameter is original
    assert torch.nn.Linear(2, 2).weight.device.type == "cpu"
