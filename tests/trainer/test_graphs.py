"""CUDA graphs for the U-Net step: when a run may use them, and the wrapper they capture.

Capturing needs a CUDA GPU (``bench/gpu.py`` checks losses with and without graphs there); here the
policy and the captured callable's own forward are checked on the CPU.
"""

from __future__ import annotations

import torch

from lora_bakery.trainer.loop.graphs import _UNetCall, graph_blockers
from lora_bakery.trainer.models import build_views
from lora_bakery.trainer.tiny import tiny_state_dict

CUDA = torch.device("cuda")


def _blockers(**overrides) -> list[str]:
    kwargs = dict(device=CUDA, enabled=True, grad_accum=1, checkpointing=False, adapter_randomness=None)
    kwargs.update(overrides)
    return graph_blockers(**kwargs)


def test_a_plain_cuda_run_may_use_graphs() -> None:
    assert _blockers() == [] or not hasattr(torch.cuda, "make_graphed_callables")


def test_each_blocker_is_named_with_its_setting() -> None:
    assert any("cuda_graphs is off" in r for r in _blockers(enabled=False))
    assert any("cpu" in r for r in _blockers(device=torch.device("cpu")))
    assert any("training.grad_accum" in r for r in _blockers(grad_accum=2))
    assert any("training.gradient_checkpointing" in r for r in _blockers(checkpointing=True))
    assert any("network.dropout" in r for r in _blockers(adapter_randomness="adapter randomness (network.dropout)"))


def test_the_captured_callable_computes_the_unet_call_sd15_and_sdxl() -> None:
    for arch in ("sd15", "sdxl"):
        views = build_views(tiny_state_dict(arch))
        unet = views.unet
        cfg = dict(unet.config)
        torch.manual_seed(0)
        noisy = torch.randn(2, 4, 16, 16)
        t = torch.tensor([10, 500])
        context = torch.randn(2, 77, cfg["cross_attention_dim"])
        added = None
        if cfg.get("addition_embed_type") == "text_time":
            pooled = cfg["projection_class_embeddings_input_dim"] - 6 * cfg["addition_time_embed_dim"]
            added = {"text_embeds": torch.randn(2, pooled), "time_ids": torch.tensor([[128.0, 128, 0, 0, 128, 128]] * 2)}
        expected = unet(noisy, t, context, added_cond_kwargs=added).sample
        wrapper = _UNetCall(unet, [])
        extra = (added["text_embeds"], added["time_ids"]) if added else ()
        torch.testing.assert_close(wrapper(noisy, t, context, *extra), expected)
        assert list(wrapper.parameters()) == []  # the host's weights are not the graph's inputs


def test_cpu_training_reports_no_graphs(tiny_sd15_path, tmp_path) -> None:
    from lora_bakery.trainer.config import TrainConfig
    from lora_bakery.trainer.loop.checkpoint import load_checkpoint
    from lora_bakery.trainer.loop.toy import make_toy_dataset
    from lora_bakery.trainer.train import train

    data = make_toy_dataset(tmp_path / "data", count=2, repeats=1)
    config = TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data), "general": {"resolution": 64, "min_bucket_reso": 64}},
        "network": {"dim": 2, "alpha": 1, "train_text_encoder": False},
        "training": {"max_steps": 2, "mixed_precision": "no", "cuda_graphs": True},
        "saving": {"output_dir": str(tmp_path / "out"), "output_name": "g", "save_every_n_epochs": 0},
        "logging": {"tensorboard": False, "loss_plot": False},
    })
    result = train(config, load_checkpoint(tiny_sd15_path))
    assert result.status == "finished"
    assert not any("CUDA graph" in m for m in result.messages)  # a CPU run says nothing about graphs
