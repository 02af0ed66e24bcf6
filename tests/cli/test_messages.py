"""Messages point somewhere: every ``--flag`` a hint names exists, no ``PosixPath(...)`` reprs, a file given
for a folder says so, a read-only dataset gets a message (no traceback). Real files, the real CLI."""

from __future__ import annotations

import argparse
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lora_bakery.cli import build_parser, main
from tests.extension.dataset.makers import tree_digest

ROOT = Path(__file__).resolve().parents[2]


def _all_flags() -> set[str]:
    """Every option string of every ``bakery`` subcommand (and their sub-subcommands)."""
    flags: set[str] = set()
    stack = [build_parser()]
    while stack:
        parser = stack.pop()
        for action in parser._actions:
            flags.update(s for s in action.option_strings if s.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return flags


@pytest.fixture()
def dataset(tmp_path) -> Path:
    folder = tmp_path / "train" / "10_a"
    folder.mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(folder / "a.png")
    (folder / "a.txt").write_text("1girl, smile", encoding="utf-8")
    return tmp_path / "train"


def test_every_flag_a_message_names_exists(dataset, tmp_path, capsys):
    failing = [
        ["dataset", "captions", str(dataset), "add-triggers"],
        ["dataset", "captions", str(dataset), "remove-tags"],
        ["dataset", "captions", str(dataset), "replace-tags"],
        ["dataset", "captions", str(dataset), "prune-traits"],
        ["dataset", "captions", str(dataset), "prune-outfit", "--pieces", ""],
        ["dataset", "masks", str(dataset)],
        ["dataset", "undo", str(dataset)],
        ["train", str(tmp_path)],
        ["reg", str(dataset / "10_a"), "--generate"],
    ]
    texts = []
    for argv in failing:
        main(argv)
        captured = capsys.readouterr()
        texts.append(captured.out + captured.err)
    # captions without a file, a tagger skip, a forced-undo refusal: the hints of previews too
    (dataset / "10_a" / "a.txt").unlink()
    main(["dataset", "captions", str(dataset), "add-triggers", "--triggers", "t", "--json"])
    texts.append(capsys.readouterr().out)
    named = {f for text in texts for f in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", text)}
    assert named, texts
    assert named <= _all_flags(), f"hints name options that do not exist: {sorted(named - _all_flags())}"
    assert not any("PosixPath" in t or "Traceback" in t for t in texts), texts


def test_a_file_given_for_a_folder_says_so(dataset, capsys):
    image = dataset / "10_a" / "a.png"
    for argv in (["dataset", "scan", str(image)], ["dataset", "prep", str(image), "trim"], ["tag", str(image)],
                 ["dataset", "captions", str(image), "sort-tags"], ["reg", str(image)]):
        assert main(argv) == 1, argv
        err = capsys.readouterr().err
        assert "is a file, not a folder" in err and "PosixPath" not in err, err
    assert f"(for this file: {dataset})" in err  # a file inside a concept folder: its training folder is named
    assert main(["dataset", "scan", str(dataset / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "PosixPath" not in err


def _without_root_override() -> list[str]:
    """A command prefix that makes file permissions bind (root ignores them unless it drops CAP_DAC_OVERRIDE)."""
    if os.geteuid() != 0:
        return []
    import shutil

    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder read-only for the child")
    return [setpriv, "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_a_read_only_dataset_gets_a_message_not_a_traceback():
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="bakery-ro-"))
    try:
        folder = base / "train" / "10_a"
        folder.mkdir(parents=True)
        Image.new("RGB", (32, 32), (200, 10, 10)).save(folder / "a.png")
        (folder / "a.txt").write_text("1girl, smile", encoding="utf-8")
        for path in (base, base / "train", folder, folder / "a.png", folder / "a.txt"):
            os.chmod(path, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
                     if path.is_dir() else 0o444)
        before = tree_digest(base / "train")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(base)}
        run = [*_without_root_override(), sys.executable, "-m", "lora_bakery", "dataset"]
        scan = subprocess.run([*run, "scan", str(base / "train")], capture_output=True, text=True, env=env, timeout=300)
        assert scan.returncode == 0, scan.stderr[-2000:]  # read-only is fine for looking
        proc = subprocess.run([*run, "captions", str(base / "train"), "add-triggers", "--triggers", "x", "--apply"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "read-only" in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
        assert tree_digest(base / "train") == before
    finally:
        for path in [base, *base.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        import shutil

        shutil.rmtree(base)
