"""onnxruntime sessions: geometry read from the model, fixed-batch chunks, provider fallback."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lora_bakery.extension.tagger.errors import TaggerError
from lora_bakery.extension.tagger.session import load_tagger


def test_geometry(tiny_v3, tiny_v2_b1):
    v3 = load_tagger(tiny_v3)
    assert (v3.input_name, v3.output_name, v3.size, v3.batch) == ("input", "output", 448, None)
    assert v3.providers == ["CPUExecutionProvider"] and v3.notes == []
    b1 = load_tagger(tiny_v2_b1, name="moat-like")
    assert (b1.name, b1.input_name, b1.output_name, b1.batch) == ("moat-like", "input_1:0", "predictions_sigmoid", 1)


def test_fixed_batch_runs_any_batch(tiny_v3, tiny_v2_b1):
    x = np.random.default_rng(0).uniform(0, 255, (3, 448, 448, 3)).astype(np.float32)
    dynamic = load_tagger(tiny_v3).predict(x)
    fixed = load_tagger(tiny_v2_b1).predict(x)
    assert dynamic.shape == fixed.shape == (3, 36)
    np.testing.assert_allclose(fixed, dynamic, atol=2e-5)  # same weights, other names (float sums differ)


def test_unavailable_cuda_falls_back_to_cpu_with_a_note(tiny_v3):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    tagger = load_tagger(tiny_v3, providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert tagger.providers == ["CPUExecutionProvider"]
    assert any("CUDAExecutionProvider is not available" in n for n in tagger.notes)


def test_csv_length_mismatch(tmp_path, tiny_v3):
    shutil.copytree(tiny_v3, tmp_path / "m")
    lines = (tmp_path / "m" / "selected_tags.csv").read_text().splitlines()
    (tmp_path / "m" / "selected_tags.csv").write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(TaggerError, match="outputs 36 tags but selected_tags.csv has 34 rows"):
        load_tagger(tmp_path / "m")


def test_bad_csv_and_bad_model(tmp_path, tiny_v3):
    shutil.copytree(tiny_v3, tmp_path / "m")
    (tmp_path / "m" / "selected_tags.csv").write_text("a,b\n1,2\n")
    with pytest.raises(TaggerError, match="needs columns name,category"):
        load_tagger(tmp_path / "m")
    shutil.copy(tiny_v3 / "selected_tags.csv", tmp_path / "m" / "selected_tags.csv")
    (tmp_path / "m" / "model.onnx").write_bytes(b"\x00garbage")
    with pytest.raises(TaggerError, match="onnxruntime cannot load"):
        load_tagger(tmp_path / "m")
