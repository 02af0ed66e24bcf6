"""``bakery compare`` and ``bakery blocks`` end to end on the tiny model."""

from __future__ import annotations

import json

from lora_bakery.cli import main


def test_compare_list_and_grid(locon_run, tmp_path, capsys):
    run_dir = locon_run[0].parent
    assert main(["compare", str(run_dir), "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    out = tmp_path / "grid"
    assert main(["compare", str(run_dir), "--tiny", "sd15", "--x", "epoch=1,final", "--y", "weight=0,1",
                 "--steps", "1", "--width", "64", "--height", "64", "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"] == 4 and summary["x"] == ["e1", "final (e3)"] and (out / "grid.png").is_file()
    assert main(["compare", str(run_dir), "--x", "cfg"]) == 1  # values missing: a readable error


def test_blocks_norms_bake_presets(locon_run, tmp_path, capsys):
    run_dir = locon_run[0].parent
    assert main(["blocks", "--json", "norms", str(run_dir), "--out", str(tmp_path / "n.png")]) == 0
    norms = json.loads(capsys.readouterr().out)
    assert norms["labels"] == ["e1", "e2", "final (e3)"] and (tmp_path / "n.png").is_file()
    target = tmp_path / "midd.safetensors"
    assert main(["blocks", "bake", str(locon_run[-1]), "--preset", "MIDD", "--drop-zero", "--out", str(target)]) == 0
    assert target.is_file() and "dropped" in capsys.readouterr().out
    assert main(["blocks", "bake", str(locon_run[-1]), "--preset", "MIDD", "--out", str(target)]) == 1  # never overwrites
    user = tmp_path / "presets.txt"
    user.write_text("MINE:" + ",".join(["0.25"] * 12) + "\n")
    assert main(["blocks", "--presets", str(user), "presets"]) == 0
    assert "MINE:0.25" in capsys.readouterr().out


def test_compare_one_file_lists_and_grids_with_default_axes(locon_run, tmp_path, capsys):
    final = locon_run[-1]
    assert main(["compare", str(final), "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["file"], r["epoch"]) for r in rows] == [(final.name, "3")]
    assert main(["compare", str(locon_run[0]), "--list"]) == 0
    assert capsys.readouterr().out.startswith(f"file={locon_run[0].name}  epoch=1")
    out = tmp_path / "one"
    # Default axes (epoch across, weights down): the epoch axis goes, the weights move across.
    assert main(["compare", str(final), "--tiny", "sd15", "--steps", "1", "--width", "64", "--height", "64",
                 "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cells"] == 3 and summary["y"] == [""] and (out / "grid.png").is_file()
    assert summary["x"] == ["weight: 0.6", "weight: 0.8", "weight: 1.0"]


def test_compare_says_what_is_wrong_with_the_path(tmp_path, capsys):
    missing = tmp_path / "nope.safetensors"
    for extra in (["--list"], []):
        assert main(["compare", str(missing), *extra]) == 1
        err = capsys.readouterr()
        assert err.out == "" and f"no such file or folder: {missing}" in err.err
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert main(["compare", str(text), "--list"]) == 1
    assert "not a .safetensors" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["compare", str(empty), "--list"]) == 1
    assert "no .safetensors files" in capsys.readouterr().err


def test_kohya_step_saves_are_labelled_and_picked_by_step(tmp_path, capsys):
    """kohya writes the 0-based running epoch into step saves: two of them must not both read ``e0``."""
    import torch
    from safetensors.torch import save_file

    from lora_bakery.cli.compare import parse_axis
    from lora_bakery.extension.compare import list_epochs

    tensors = {"lora_unet_x.lora_down.weight": torch.zeros(2, 4), "lora_unet_x.lora_up.weight": torch.zeros(4, 2)}
    for name, epoch, steps in (("k-step00000006", "0", "6"), ("k-step00000012", "0", "12"), ("k", "1", "12")):
        save_file(tensors, str(tmp_path / f"{name}.safetensors"), metadata={"ss_epoch": epoch, "ss_steps": steps})
    epochs = list_epochs(tmp_path)
    assert [e.label for e in epochs] == ["s6", "s12", "final (e1)"]
    axis = parse_axis("epoch=s12,final", epochs)
    assert axis.labels == ["s12", "final (e1)"]
    assert main(["compare", str(tmp_path / "k-step00000006.safetensors"), "--list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["step"] == "6"
