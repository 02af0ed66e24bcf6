"""A tiny real WD14-style tagger: ``model.onnx`` + ``selected_tags.csv`` that onnxruntime runs.

Used by the tests, ``bakery demo`` and ``bench/tagger.py``. It has the real interface
(reference/dataset-tools.md §1): NHWC float32 input in 0..255 **BGR**, named ``input_1:0`` (v2,
tf2onnx) or ``input`` (v3; the real v3 name is unverified, our code reads names dynamically
anyway), a dynamic batch dimension (or batch fixed to 1, like some v2 exports), and an output
``predictions_sigmoid`` (v2) / ``output`` (v3) of probabilities that have already been through a
sigmoid. The CSV has the real header and category codes: 4 ratings (9), general (0), character (4).

The graph is ``ReduceMean`` over H, W → ``Mul`` by 1/255 → ``MatMul`` with fixed weights →
``Add`` bias → ``Sigmoid``, so image *colour* drives the tags and tests can reason about them:

- ``red_theme`` / ``green_theme`` / ``blue_theme`` fire for pure red / green / blue images (not
  for yellow, white or black), ``yellow_theme`` for yellow, ``white_background`` for white,
  ``dark`` for black (square images: padding to square adds white);
- ``^_^`` (a kaomoji, keeps its underscore) fires for yellow images;
- ``simple_background`` (p≈0.62) and ``1girl`` (p≈0.50) fire for every image;
- characters ``hakurei_reimu`` / ``hatsune_miku`` / ``saber_(fate)`` (parentheses) fire
  above 0.85 for pure red / green / blue images;
- seeded filler tags (``long_hair``, ``smile``…) stay mostly below 0.35 and give MCut a tail.

``conv=True`` adds a convolution branch (Transpose → Conv 4×4/4 → Relu → Conv 3×3/2 → Relu →
GlobalAveragePool → MatMul, tiny weights) so inference costs something, for the benchmark.
"""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np

from lora_bakery.extension.tagger import onnx_writer as ox
from lora_bakery.trainer.atomic import write_bytes_atomic

Variant = Literal["v2", "v3"]
TINY_TAGGER_VERSION = "t2"

NAMES = {"v2": ("input_1:0", "predictions_sigmoid"), "v3": ("input", "output")}

# (name, category, weights on (r, g, b) in 0..1, bias) — logits; the model applies the sigmoid.
RATINGS = [
    ("general", 9, (2.0, 2.0, 2.0), -1.0),
    ("sensitive", 9, (1.5, 0.0, 0.0), -1.0),
    ("questionable", 9, (0.0, 0.0, 0.0), -3.0),
    ("explicit", 9, (0.0, 0.0, 0.0), -4.0),
]
GENERAL = [
    ("1girl", 0, (0.0, 0.0, 0.0), 0.0),
    ("simple_background", 0, (0.0, 0.0, 0.0), 0.5),
    ("red_theme", 0, (8.0, -9.0, -9.0), -4.0),
    ("green_theme", 0, (-9.0, 8.0, -9.0), -4.0),
    ("blue_theme", 0, (-9.0, -9.0, 8.0), -4.0),
    ("yellow_theme", 0, (6.0, 6.0, -12.0), -8.0),
    ("white_background", 0, (4.0, 4.0, 4.0), -10.0),
    ("dark", 0, (-6.0, -6.0, -6.0), 3.0),
    ("^_^", 0, (5.0, 5.0, -10.0), -7.0),
]
CHARACTERS = [
    ("hakurei_reimu", 4, (10.0, -10.0, -10.0), -5.0),
    ("hatsune_miku", 4, (-10.0, 10.0, -10.0), -5.0),
    ("saber_(fate)", 4, (-10.0, -10.0, 10.0), -5.0),
]
FILLER = [
    "long_hair", "short_hair", "smile", "open_mouth", "looking_at_viewer", "blush", "solo",
    "brown_hair", "black_hair", "upper_body", "closed_eyes", "holding", "outdoors", "sky",
    "school_uniform", "shirt", "skirt", "jewelry", "o_o", "standing",
]


def tag_rows(seed: int = 0) -> list[tuple[str, int, tuple[float, float, float], float]]:
    """All rows in CSV order: ratings, general (fixed then seeded filler), characters.

    Filler weights come from ``random.Random(seed)`` (stable across Python and numpy versions).
    """
    rng = random.Random(seed)
    filler = []
    for name in FILLER:
        weights = tuple(round(rng.uniform(-1.5, 1.5), 4) for _ in range(3))
        filler.append((name, 0, weights, round(rng.uniform(-6.0, -3.0), 4)))
    return RATINGS + GENERAL + filler + CHARACTERS  # type: ignore[return-value]


def selected_tags_csv(seed: int = 0) -> str:
    """The ``selected_tags.csv`` text: header ``tag_id,name,category,count``, ratings first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["tag_id", "name", "category", "count"])
    rng = random.Random(seed + 1)
    for index, (name, category, _, _) in enumerate(tag_rows(seed)):
        tag_id = 9999999 - index if category == 9 else 1000 + index
        writer.writerow([tag_id, name, category, rng.randint(100, 500000)])
    return out.getvalue()


def _conv_branch(k: int, seed: int) -> tuple[list[ox.Node], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    inits = {
        "conv1_w": (rng.standard_normal((32, 3, 4, 4)) * 0.01).astype(np.float32),
        "conv1_b": np.zeros(32, np.float32),
        "conv2_w": (rng.standard_normal((64, 32, 3, 3)) * 0.05).astype(np.float32),
        "conv2_b": np.zeros(64, np.float32),
        "head_w": (rng.standard_normal((64, k)) * 1e-3).astype(np.float32),
    }
    nodes = [
        ox.Node("Transpose", ["scaled"], ["nchw"], {"perm": [0, 3, 1, 2]}),
        ox.Node("Conv", ["nchw", "conv1_w", "conv1_b"], ["c1"], {"kernel_shape": [4, 4], "strides": [4, 4]}),
        ox.Node("Relu", ["c1"], ["r1"]),
        ox.Node("Conv", ["r1", "conv2_w", "conv2_b"], ["c2"],
                {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ox.Node("Relu", ["c2"], ["r2"]),
        ox.Node("GlobalAveragePool", ["r2"], ["gap"]),
        ox.Node("Flatten", ["gap"], ["flat"], {"axis": 1}),
        ox.Node("MatMul", ["flat", "head_w"], ["conv_logits"]),
        ox.Node("Add", ["colour_logits", "conv_logits"], ["logits"]),
    ]
    return nodes, inits


def tiny_model_bytes(
    variant: Variant = "v3", *, fixed_batch: bool = False, conv: bool = False, size: int = 448, seed: int = 0
) -> bytes:
    """The ``model.onnx`` bytes of the tiny tagger (see the module docstring).

    Args:
        variant (`str`, defaults to ``"v3"``): ``"v2"`` (``input_1:0`` → ``predictions_sigmoid``)
            or ``"v3"`` (``input`` → ``output``).
        fixed_batch (`bool`, defaults to `False`): batch dimension fixed to 1 instead of symbolic.
        conv (`bool`, defaults to `False`): add the convolution branch (benchmarks).
        size (`int`, defaults to 448): input height and width.
        seed (`int`, defaults to 0): filler tag weights.
    """
    rows = tag_rows(seed)
    k = len(rows)
    bgr = np.array([[w[2], w[1], w[0]] for _, _, w, _ in rows], np.float32).T  # [3, K], BGR input order
    inits: dict[str, np.ndarray] = {
        "inv255": np.array([1.0 / 255.0], np.float32),
        "colour_w": bgr,
        "colour_b": np.array([b for *_, b in rows], np.float32),
    }
    nodes = [
        ox.Node("Mul", ["x", "inv255"], ["scaled"]),
        ox.Node("ReduceMean", ["scaled"], ["mean"], {"axes": [1, 2], "keepdims": 0}),
        ox.Node("MatMul", ["mean", "colour_w"], ["colour_mm"]),
        ox.Node("Add", ["colour_mm", "colour_b"], ["colour_logits" if conv else "logits"]),
    ]
    if conv:
        conv_nodes, conv_inits = _conv_branch(k, seed)
        nodes += conv_nodes
        inits.update(conv_inits)
    input_name, output_name = NAMES[variant]
    nodes[0].inputs = [input_name, "inv255"]
    nodes.append(ox.Node("Sigmoid", ["logits"], [output_name]))
    batch: int | str = 1 if fixed_batch else "batch"
    return ox.model(
        nodes,
        inits,
        [ox.value_info(input_name, [batch, size, size, 3])],
        [ox.value_info(output_name, [batch, k])],
        graph_name=f"tiny_wd_{variant}",
    )




def write_tiny_tagger(
    folder: str | Path,
    variant: Variant = "v3",
    *,
    fixed_batch: bool = False,
    conv: bool = False,
    size: int = 448,
    seed: int = 0,
) -> Path:
    """Write ``model.onnx`` and ``selected_tags.csv`` into ``folder`` (created; files atomic).

    Args: as :func:`tiny_model_bytes`.

    Returns:
        `Path`: the folder, ready for ``tagger.models.resolve_model``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = tiny_model_bytes(variant, fixed_batch=fixed_batch, conv=conv, size=size, seed=seed)
    write_bytes_atomic(folder / "model.onnx", model)
    write_bytes_atomic(folder / "selected_tags.csv", selected_tags_csv(seed).encode("utf-8"))
    return folder


def tiny_tagger(
    variant: Variant = "v3",
    *,
    fixed_batch: bool = False,
    conv: bool = False,
    size: int = 448,
    cache_dir: str | Path | None = None,
) -> Path:
    """A cached tiny tagger folder under ``$BAKERY_CACHE`` (else ``~/.cache/lora-bakery``)/taggers.

    Built in a temporary sibling and renamed into place, so parallel callers never see half a folder.

    Returns:
        `Path`: the model folder.
    """
    root = Path(cache_dir or os.environ.get("BAKERY_CACHE") or Path.home() / ".cache" / "lora-bakery")
    name = f"tiny-{variant}{'-b1' if fixed_batch else ''}{'-conv' if conv else ''}-{size}"
    folder = root / "taggers" / TINY_TAGGER_VERSION / name
    if (folder / "model.onnx").is_file() and (folder / "selected_tags.csv").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
    try:
        os.chmod(staging, 0o755)
        write_tiny_tagger(staging, variant, fixed_batch=fixed_batch, conv=conv, size=size)
        try:
            os.replace(staging, folder)
        except OSError:
            if not (folder / "model.onnx").is_file():
                raise RuntimeError(f"{folder} exists but holds no model.onnx; delete the folder") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
