"""No silent tiny model: commands that train or generate refuse unless a model is named (``--ckpt``,
``model.checkpoint`` or ``--tiny``), and say how; ``bakery app`` and ``bakery doctor`` say when they use it."""

from __future__ import annotations

import pytest

from lora_bakery.cli import app, common, main
from lora_bakery.trainer.config import TrainConfig
from tests.extension.reg.helpers import make_training


def _refused(capsys, argv: list[str], command: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"bakery {command}: no model named" in err and "--ckpt PATH" in err and "--tiny sd15" in err, err
    assert "Traceback" not in err


def test_train_without_a_model_refuses(tmp_path, capsys):
    config = TrainConfig()
    config.dataset.train_data_dir = str(make_training(tmp_path / "train"))
    config.saving.output_dir = str(tmp_path / "out")
    path = config.save(tmp_path / "cfg.toml")
    _refused(capsys, ["train", str(path)], "train")
    assert "model.checkpoint" in no_model_text("train")
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


def no_model_text(command: str) -> str:
    return common.no_model_message(command, True)


def test_leco_reg_compare_blocks_without_a_model_refuse(tmp_path, capsys):
    example = tmp_path / "leco.toml"
    assert main(["leco", "--example", str(example)]) == 0
    capsys.readouterr()
    _refused(capsys, ["leco", str(example)], "leco")
    root = make_training(tmp_path / "train")
    _refused(capsys, ["reg", str(root / "3_outfit"), "--generate"], "reg")
    assert not (tmp_path / "reg").exists()
    lora = tmp_path / "x.safetensors"
    lora.write_bytes(b"not read before the model is named")
    _refused(capsys, ["compare", str(lora), "--x", "weight=0.5,1", "--y", "seed=1,2", "--out", str(tmp_path / "grid")],
             "compare")
    _refused(capsys, ["blocks", "effect", str(lora), "--out", str(tmp_path / "fx")], "blocks")


def test_a_named_model_wins_and_tiny_is_explicit(tmp_path):
    class Args:
        ckpt = None
        tiny = None
        command = "train"

    args = Args()
    with pytest.raises(common.NoModel, match="--tiny"):
        common.resolve_checkpoint(args)
    assert common.resolve_checkpoint(args, "/models/mine.safetensors").name == "mine.safetensors"
    args.tiny = "sd15"
    assert common.resolve_checkpoint(args, "/models/mine.safetensors").name.startswith("tiny-sd15")
    args.ckpt = tmp_path / "given.safetensors"
    assert common.resolve_checkpoint(args, "/models/mine.safetensors") == tmp_path / "given.safetensors"
    args.ckpt = args.tiny = None
    assert common.resolve_checkpoint(args, tiny_default=True).name.startswith("tiny-sd15")  # doctor only


def test_app_says_when_it_runs_the_tiny_model():
    assert "tiny test model" in app.startup_line(None) and "--ckpt" in app.startup_line(None)
    assert "tiny" not in app.startup_line("/m/mine.safetensors")
    from lora_bakery.extension.app import make_context

    assert "tiny" in (make_context(None).notice or "")  # the page header


def test_demo_only_unknown_stage_fails_and_lists_the_stages(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--out", str(tmp_path / "d"), "--only", "nonsense"])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert "nonsense" in err and all(s in err for s in ("dataset", "reg", "bake", "leco", "compare", "generate"))
    assert not (tmp_path / "d").exists()
