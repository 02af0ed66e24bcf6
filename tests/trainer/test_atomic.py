"""The one atomic writer: whole files only, new files get the umask-derived mode, replaced files keep theirs."""

from __future__ import annotations

import os
import stat

import pytest

from lora_bakery.trainer.atomic import new_file_mode, target_mode, write_bytes_atomic, write_text_atomic


@pytest.fixture()
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_new_files_get_the_umask_mode_not_0600(tmp_path, umask_022):
    out = write_bytes_atomic(tmp_path / "sub" / "new.bin", b"data")
    assert out.read_bytes() == b"data"
    assert _mode(out) == 0o644 == new_file_mode()
    os.umask(0o002)
    assert _mode(write_text_atomic(tmp_path / "group.txt", "x")) == 0o664 == new_file_mode()


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664, 0o444])
def test_a_replaced_file_keeps_its_mode(tmp_path, umask_022, mode):
    path = tmp_path / "caption.txt"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, mode)
    write_text_atomic(path, "new, text")
    assert path.read_text(encoding="utf-8") == "new, text"
    assert _mode(path) == mode == target_mode(path)
    assert [p.name for p in tmp_path.iterdir()] == ["caption.txt"]  # no temp file left behind


def test_target_mode_of_a_missing_file_is_the_new_file_mode(tmp_path, umask_022):
    assert target_mode(tmp_path / "absent.safetensors") == 0o644
