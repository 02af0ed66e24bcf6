"""``bakery reg`` on a real folder with the embedded tiny model: preview, generate, refuse, list, delete, errors."""

from __future__ import annotations

import json

from lora_bakery.cli import main
from tests.extension.reg.helpers import make_training

TINY = ["--resolution", "64", "--min-bucket", "32", "--max-bucket", "128", "--bucket-step", "32", "--steps", "1",
        "--cfg", "1", "--seed", "9"]


def test_preview_generate_list_delete(tmp_path, capsys):
    root = make_training(tmp_path / "train")
    assert main(["reg", str(root), *TINY]) == 0
    out = capsys.readouterr().out
    assert "1girl, red_hair, smile" in out and "32x96" in out and "no caption file (c.txt)" in out
    assert "removing: chara, outfit1" in out and "preview only" in out and not (tmp_path / "reg").exists()
    assert main(["reg", str(root), *TINY, "--json", "--remove", "chara"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["settings"]["remove"] == ["chara"] and plan["rows"][2]["prompt"] == "outfit1, shirt, skirt"

    outfit = str(root / "3_outfit")  # one image keeps the tiny-model run short
    assert main(["reg", outfit, *TINY, "--generate", "--json", "--tiny", "sd15"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["generated"] == ["3_outfit/e.png"] and (tmp_path / "reg/3_outfit/e.txt").is_file()
    assert main(["reg", outfit, *TINY, "--generate", "--tiny", "sd15"]) == 1
    assert "already holds 1 reg image" in capsys.readouterr().err
    assert main(["reg", outfit, *TINY, "--resume", "--tiny", "sd15"]) == 0
    assert "0 reg image(s) generated, 1 kept" in capsys.readouterr().out
    assert main(["reg", str(root), "--list"]) == 0
    assert "3_outfit/e.png" in capsys.readouterr().out
    assert main(["reg", str(root), "--delete", "3_outfit/e.png"]) == 0
    assert "Deleted 1 image" in capsys.readouterr().out and not (tmp_path / "reg/3_outfit/e.png").exists()


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["reg", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().err
    root = make_training(tmp_path / "train")
    assert main(["reg", str(root), "--output", str(root / "reg")]) == 1
    assert "inside the training folder" in capsys.readouterr().err
    assert main(["reg", str(root), "--width", "30", "--size", "fixed"]) == 1
    assert "width" in capsys.readouterr().err
