"""The tiny tagger is a real ONNX model onnxruntime loads, with the WD14 interface."""

from __future__ import annotations

import csv

import numpy as np
import onnxruntime as ort

from lora_bakery.extension.tagger.labels import load_labels
from lora_bakery.extension.tagger.tiny import tag_rows, tiny_model_bytes, tiny_tagger, write_tiny_tagger


def _session(folder):
    return ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])


def test_v2_interface(tmp_path):
    folder = write_tiny_tagger(tmp_path / "v2", "v2")
    s = _session(folder)
    (inp,), (out,) = s.get_inputs(), s.get_outputs()
    assert (inp.name, inp.type, inp.shape[1:]) == ("input_1:0", "tensor(float)", [448, 448, 3])
    assert isinstance(inp.shape[0], str)  # symbolic batch
    assert out.name == "predictions_sigmoid" and out.shape[1] == len(tag_rows())


def test_v3_fixed_batch_and_conv(tmp_path):
    fixed = _session(write_tiny_tagger(tmp_path / "b1", "v3", fixed_batch=True))
    assert fixed.get_inputs()[0].name == "input" and fixed.get_inputs()[0].shape[0] == 1
    assert fixed.get_outputs()[0].name == "output"
    conv = _session(write_tiny_tagger(tmp_path / "conv", "v3", conv=True, size=224))
    x = np.full((3, 224, 224, 3), 128, np.float32)
    out = conv.run(None, {"input": x})[0]
    assert out.shape == (3, len(tag_rows())) and np.all((out > 0) & (out < 1))


def test_outputs_are_sigmoid_of_colour_logits(tmp_path):
    """BGR input: a pure red image has 255 in channel 2; the model matches the table exactly."""
    s = _session(write_tiny_tagger(tmp_path / "v3", "v3"))
    x = np.zeros((1, 448, 448, 3), np.float32)
    x[..., 2] = 255.0
    probs = s.run(None, {"input": x})[0][0]
    expected = [1 / (1 + np.exp(-(w[0] + b))) for _, _, w, b in tag_rows()]
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)


def test_csv_categories_and_determinism(tmp_path):
    a = write_tiny_tagger(tmp_path / "a", "v3")
    b = write_tiny_tagger(tmp_path / "b", "v3")
    assert (a / "model.onnx").read_bytes() == (b / "model.onnx").read_bytes()
    assert tiny_model_bytes("v3", seed=1) != tiny_model_bytes("v3", seed=0)
    with open(a / "selected_tags.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["tag_id", "name", "category", "count"]
    assert [r["name"] for r in rows[:4]] == ["general", "sensitive", "questionable", "explicit"]
    assert [r["tag_id"] for r in rows[:4]] == ["9999999", "9999998", "9999997", "9999996"]
    labels = load_labels(a / "selected_tags.csv")
    assert len(labels.rating) == 4 and len(labels.character) == 3
    assert {labels.names[i] for i in labels.character} == {"hakurei_reimu", "hatsune_miku", "saber_(fate)"}
    assert "^_^" in {labels.names[i] for i in labels.general}


def test_cached_tiny_tagger(tmp_path):
    first = tiny_tagger("v2", fixed_batch=True, cache_dir=tmp_path)
    assert tiny_tagger("v2", fixed_batch=True, cache_dir=tmp_path) == first
    assert (first / "model.onnx").is_file() and (first / "selected_tags.csv").is_file()
    assert [p.name for p in first.parent.iterdir()] == [first.name]  # no staging leftovers


def test_varint_encoding():
    from lora_bakery.extension.tagger.onnx_writer import _varint

    assert _varint(0) == b"\x00" and _varint(127) == b"\x7f" and _varint(300) == b"\xac\x02"
    assert _varint(-1) == b"\xff" * 9 + b"\x01"  # int64 two's complement, 10 bytes
