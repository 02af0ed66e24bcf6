"""Issue 12 on real folders: what the Dataset tab shows is what the trainer trains.

The keep-tokens separator, 16-bit and damaged images (scan severity = trainer behaviour), masks,
and the skipped list printed before the first step (CLI, tab/job log, TrainResult). Each test
trains the tiny SD1.5 model on files written into a temp folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lora_bakery.trainer.config import DatasetBlock, Subset, TrainConfig, list_presets, load_preset
from lora_bakery.trainer.data.dataset import build_plan
from lora_bakery.trainer.loop.checkpoint import load_checkpoint
from lora_bakery.trainer.loop.toy import make_toy_dataset
from lora_bakery.trainer.saving import load_network
from lora_bakery.trainer.train import TrainError, train
from tests.extension.dataset import makers as mk

pytestmark = pytest.mark.usefixtures("one_thread")


def make_config(data: Path, out: Path, general: dict | None = None, **training) -> TrainConfig:
    return TrainConfig.from_dict({
        "dataset": {"train_data_dir": str(data),
                    "general": {"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128, **(general or {})}},
        "network": {"dim": 4, "alpha": 4},
        "optimizer": {"lr": 1e-3, "scheduler": "constant"},
        "training": {"epochs": 1, "mixed_precision": "no", "seed": 1, **training},
        "saving": {"output_dir": str(out), "output_name": "run", "save_precision": "float"},
        "logging": {"tensorboard": False, "loss_plot": False},
    })


class Recorder:
    """A progress that records what the user sees, in order: ``("begin", text)``, ``("step", text)``, ``("log", text)``."""

    interrupted = False

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def begin(self, total, text=""):
        self.events.append(("begin", text))

    def step(self, n=1, text=None):
        if text:
            self.events.append(("step", text))

    def log(self, text):
        self.events.append(("log", text))

    def preview(self, image):
        pass

    def end(self):
        pass

    def began(self, prefix: str) -> bool:
        return any(kind == "begin" and text.startswith(prefix) for kind, text in self.events)

    def index(self, kind: str, needle: str) -> int:
        return next(i for i, (k, text) in enumerate(self.events) if k == kind and needle in text)


class RecordingTokenizer:
    """The real tokenizer, keeping every text it is given (to see what reaches the text encoder)."""

    def __init__(self, inner) -> None:
        self.inner, self.texts = inner, []

    def __call__(self, texts, *args, **kwargs):
        self.texts.extend(texts)
        return self.inner(texts, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.inner, name)


# ----------------------------------------------------------------------- 1. keep-token separator

def test_triple_bar_captions_train_without_the_literal_and_record_the_separator(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", trigger="zqx", count=3, repeats=2,
                            caption="{trigger}, ||| disc, yellow, magenta")  # what add-triggers writes
    config = make_config(data, tmp_path / "out", {"shuffle_caption": True, "keep_tokens": 1})  # as the presets
    parts = load_checkpoint(tiny_sd15_path)
    tokenizer = RecordingTokenizer(parts.tokenizers[0])
    parts.tokenizers = [tokenizer]
    result = train(config, parts)
    assert len(tokenizer.texts) == 6  # 3 images x 2 repeats, batch 1
    assert all("|||" not in t and t.startswith("zqx, ") for t in tokenizer.texts), tokenizer.texts
    assert {frozenset(t.split(", ")) for t in tokenizer.texts} == {frozenset({"zqx", "disc", "yellow", "magenta"})}
    meta = load_network(result.final)[1]
    assert meta["ss_keep_tokens_separator"] == "|||"
    assert meta["ss_shuffle_caption"] == "True" and meta["ss_keep_tokens"] == "1"


def test_triple_bar_captions_under_another_separator_are_refused_before_caching(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", trigger="zqx", count=2, repeats=1, caption="{trigger}, ||| disc")
    config = make_config(data, tmp_path / "out", {"shuffle_caption": True, "keep_tokens": 1, "keep_tokens_separator": ""})
    progress = Recorder()
    with pytest.raises(TrainError) as info:
        train(config, load_checkpoint(tiny_sd15_path), progress)
    message = str(info.value)
    assert info.value.reason == "data" and "'|||'" in message and "keep_tokens_separator" in message
    assert "2 caption(s) in" in message and "1_zqx" in message
    assert not progress.began("Caching latents")
    assert not (tmp_path / "out").exists()


def _resolved_separator(config: TrainConfig) -> str:
    (_, subsets), = config.dataset.resolve_blocks([DatasetBlock(subsets=[Subset(image_dir="x")])])
    return subsets[0].keep_tokens_separator


@pytest.mark.parametrize("source", ["default", "bake form", *(p["name"] for p in list_presets())])
def test_presets_bake_form_and_bakery_train_agree_on_the_separator(source, tmp_path):
    if source == "default":
        config = TrainConfig()
    elif source == "bake form":
        from lora_bakery.extension.ui.bake import form

        config = form.to_config(form.defaults())
        assert "training.skip_bad_images" in form.NAMES  # the new option shows up in the form by itself
    else:
        config = load_preset(source)
    assert _resolved_separator(config) == "|||"
    # bakery train reads the TOML the tab saves: the same value comes back
    assert _resolved_separator(TrainConfig.load(config.save(tmp_path / "c.toml"))) == "|||"


# ----------------------------------------------------------------------- 2. scan = trainer

def _messy_dataset(root: Path) -> Path:
    folder = root / "10_zqx"
    for i in range(2):
        mk.save(mk.pattern(64, 64, seed=i), folder / f"good{i}.png")
    mk.png16(folder / "deep.png")  # 16-bit greyscale: trained, converted as convert-png does
    mk.truncated(folder / "cut.jpg")  # ends early: refused / skipped before caching
    mk.truncated(folder / "cut.png", "PNG")
    (folder / "zero.png").write_bytes(b"")
    (folder / "junk.jpg").write_bytes(b"this is not a jpeg")
    for image in list(folder.iterdir()):
        image.with_suffix(".txt").write_text("zqx, thing", encoding="utf-8")
    return root


def _broken_inside(path: Path) -> None:
    """A PNG whose header and end marker are fine but whose pixel data is damaged (only a decode finds it)."""
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 40
    for k in range(start, start + 100):
        data[k] ^= 0x55
    path.write_bytes(bytes(data))


def test_scan_severity_equals_what_the_trainer_does(tmp_path):
    from lora_bakery.extension.dataset.scan import ScanOptions, scan

    root = _messy_dataset(tmp_path / "data")
    skipping = build_plan(make_config(root, tmp_path / "out", skip_bad_images=True))
    left_out = {p.name for p, _ in skipping.skipped}
    assert left_out == {"cut.jpg", "cut.png", "zero.png", "junk.jpg"}
    assert sorted(i.image.name for i in skipping.items) == ["deep.png", "good0.png", "good1.png"]
    for options in (ScanOptions(), ScanOptions(deep=True)):
        found = scan(root, options, use_cache=False)
        unusable = {Path(im.path).name for _, im in found.images() if not im.usable}
        assert unusable == left_out, options
        levels = {p.code: p.level for _, im in found.images() for p in im.problems}
        assert levels["16-bit"] == "info" and levels["truncated" if not options.deep else "unreadable"] == "error"
    # damage only a decode finds: the deep scan says so, and skip_bad_images decodes before caching
    _broken_inside(root / "10_zqx" / "good1.png")
    deep_scan = scan(root, ScanOptions(deep=True), use_cache=False)
    assert {Path(im.path).name for _, im in deep_scan.images() if not im.usable} == left_out | {"good1.png"}
    assert {p.name for p, _ in build_plan(make_config(root, tmp_path / "o", skip_bad_images=True)).skipped} == left_out | {"good1.png"}


def test_damaged_images_stop_before_caching_naming_the_files_and_the_option(tmp_path, tiny_sd15_path):
    root = _messy_dataset(tmp_path / "data")
    progress = Recorder()
    with pytest.raises(TrainError) as info:
        train(make_config(root, tmp_path / "out"), load_checkpoint(tiny_sd15_path), progress)
    message = str(info.value)
    assert info.value.reason == "data" and "training.skip_bad_images" in message and "--skip-bad-images" in message
    assert all(name in message for name in ("cut.jpg", "cut.png", "zero.png", "junk.jpg"))
    assert "ends early" in message and "deep.png" not in message
    assert not progress.began("Caching latents")


def test_skip_bad_images_lists_them_before_the_first_step(tmp_path, tiny_sd15_path):
    root = _messy_dataset(tmp_path / "data")
    progress = Recorder()
    result = train(make_config(root, tmp_path / "out", skip_bad_images=True), load_checkpoint(tiny_sd15_path), progress)
    assert result.status == "finished" and result.steps == 30  # 3 images x 10 repeats
    assert {p.name for p, _ in result.skipped} == {"cut.jpg", "cut.png", "zero.png", "junk.jpg"}
    first_step = progress.index("begin", "Baking")
    for name in ("cut.jpg", "cut.png", "zero.png", "junk.jpg"):
        assert progress.index("log", name) < first_step
        assert any(name in m for m in result.messages)  # the tab shows TrainResult.messages
    assert progress.index("log", "4 images left out") < first_step


def test_16bit_png_trains_exactly_as_convert_png_writes_it(tmp_path):
    from lora_bakery.extension.dataset.imageprep import plan_convert_to_png
    from lora_bakery.extension.dataset.safety import apply
    from lora_bakery.trainer.data.images import load_pixels

    root = tmp_path / "data"
    a = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)  # 0 .. 65520
    mk.save(Image.fromarray(a, "I;16"), root / "1_zqx" / "deep.png")
    config = make_config(root, tmp_path / "out")
    trained = load_pixels(build_plan(config).items[0])
    assert -0.1 < float(trained.mean()) < 0.1  # a mid-grey ramp, not Pillow's clipped near-white (mean ~ +1)
    kohya = np.asarray(Image.open(root / "1_zqx" / "deep.png").convert("RGB"), dtype=np.float32) / 127.5 - 1
    assert kohya.mean() > 0.9
    copy = tmp_path / "converted"
    shutil.copytree(root, copy)
    apply(plan_convert_to_png(copy, ["1_zqx/deep.png"]), copy)
    assert Image.open(copy / "1_zqx" / "deep.png").mode == "RGB"  # 8-bit now
    converted = load_pixels(build_plan(make_config(copy, tmp_path / "out2")).items[0])
    assert torch.equal(trained, converted)


# ----------------------------------------------------------------------- 3. skipped reasons in the error

def test_everything_skipped_says_why_not_how_to_name_folders(tmp_path, tiny_sd15_path):
    root = tmp_path / "data"
    for i in range(2):
        mk.truncated(root / "10_zqx" / f"cut{i}.jpg")
    (root / "_duplicates").mkdir()
    (root / "notes").mkdir()
    with pytest.raises(TrainError) as info:
        train(make_config(root, tmp_path / "out", skip_bad_images=True), load_checkpoint(tiny_sd15_path))
    message = str(info.value)
    assert "no training images left" in message and "N_name" not in message.split("\n")[0]
    assert "cut0.jpg: the file ends early" in message and "cut1.jpg" in message
    assert "_duplicates: duplicates moved out of training" in message and "'notes'" in message  # folders not trained


# ----------------------------------------------------------------------- 4. masks

def test_masked_loss_lists_images_without_a_mask_and_never_trains_an_all_black_one(tmp_path, tiny_sd15_path):
    data = make_toy_dataset(tmp_path / "data", trigger="zqx", count=4, repeats=1)
    masks = tmp_path / "masks"
    mk.save(Image.new("L", (64, 64), 255), masks / "000.png")
    mk.save(Image.new("L", (64, 64), 0), masks / "001.png")  # all black: would train at loss 0
    half = np.zeros((64, 64), np.uint8)
    half[:, :32] = 255
    mk.save(Image.fromarray(half, "L"), masks / "002.png")
    # 003.png has no mask
    config = TrainConfig.from_dict({
        **make_config(data, tmp_path / "out", masked_loss=True).to_dict(),
        "dataset": {"datasets": [{"resolution": 64, "min_bucket_reso": 64, "max_bucket_reso": 128, "subsets": [
            {"image_dir": str(data / "1_zqx"), "conditioning_data_dir": str(masks)}]}]},
    })
    progress = Recorder()
    result = train(config, load_checkpoint(tiny_sd15_path), progress)
    reasons = {p.name: why for p, why in result.skipped}
    assert set(reasons) == {"001.png", "003.png"}
    assert "all black" in reasons["001.png"] and "no mask" in reasons["003.png"]
    assert result.steps == 2 and all(loss > 0 for loss in result.losses)
    assert progress.index("log", "001.png") < progress.index("begin", "Baking")
    # alpha_mask: a fully transparent image is left out the same way
    alpha = tmp_path / "alpha" / "1_zqx"
    mk.rgba_png(alpha / "half.png", 64, 64)
    mk.save(Image.new("RGBA", (64, 64), (255, 0, 0, 0)), alpha / "clear.png")
    plan = build_plan(make_config(alpha.parent, tmp_path / "o", {"alpha_mask": True}))
    assert [i.image.name for i in plan.items] == ["half.png"]
    assert [(p.name, "fully transparent" in why) for p, why in plan.skipped] == [("clear.png", True)]
    # masked_loss with nothing to mask by is said, not silently ignored
    unmasked = build_plan(make_config(data, tmp_path / "o2", masked_loss=True))
    assert any("every image trains unmasked" in w for w in unmasked.warnings)


def test_folder_mode_masks_folder_trains_what_the_scan_says(tmp_path, tiny_sd15_path):
    """The Dataset tab's masks/<concept> folder is the trainer's mask source in folder mode; every image the
    scan flags for masks (missing, all black, no mask folder) is the one the trainer leaves out."""
    from lora_bakery.extension.dataset.scan import scan

    root = tmp_path / "data"
    make_toy_dataset(root, trigger="zqx", count=3, repeats=1)  # 1_zqx/000..002.png
    make_toy_dataset(root, trigger="other", count=1, repeats=1)  # 1_other: no mask folder of its own
    masks = root / "masks" / "1_zqx"
    mk.save(Image.new("L", (64, 64), 255), masks / "000.png")
    mk.save(Image.new("L", (64, 64), 0), masks / "001.png")  # all black
    # 002.png: no mask
    progress = Recorder()
    result = train(make_config(root, tmp_path / "out", masked_loss=True), load_checkpoint(tiny_sd15_path), progress)
    left_out = {f"{p.parent.name}/{p.name}" for p, _ in result.skipped}
    assert left_out == {"1_zqx/001.png", "1_zqx/002.png", "1_other/000.png"} and result.steps == 1
    assert any("masks: mask folder" in m for m in result.messages)  # the masks folder is named, never a concept
    found = scan(root, use_cache=False)
    flagged = {im.path for _, im in found.images() if any(p.code.startswith("mask-") for p in im.problems)}
    assert flagged == {"1_zqx/001.png", "1_zqx/002.png"}  # mask-black, mask-missing
    assert [p.code for p in found.problems if "1_other" in p.message] == ["mask-none"]  # its whole folder
    assert "masks" not in {f.name for f in found.folders}
