"""kohya bucket math against values computed by hand from sd-scripts' formulas (reference/dataset-tools.md §6)."""

from __future__ import annotations

import pytest

from lora_bakery.trainer.data.buckets import (
    BucketManager,
    BucketSettings,
    assign,
    make_bucket_resolutions,
    sdxl_crop_ltrb,
    trainer_view,
)

from .makers import pattern

SD15 = BucketSettings()
SDXL = BucketSettings(resolution=(1024, 1024), min_reso=256, max_reso=2048)


def test_bucket_list_512_is_kohyas_17():
    assert make_bucket_resolutions((512, 512), 256, 1024, 64) == [
        (256, 832), (256, 896), (256, 960), (256, 1024), (320, 704), (320, 768), (384, 640), (448, 576), (512, 512),
        (576, 448), (640, 384), (704, 320), (768, 320), (832, 256), (896, 256), (960, 256), (1024, 256)]


def test_bucket_list_1024_contains_the_sdxl_classics():
    resos = BucketManager(SDXL).resos
    for b in [(1024, 1024), (832, 1216), (1216, 832), (896, 1152), (768, 1344), (640, 1536)]:
        assert b in resos
    assert all(w * h <= 1024 * 1024 and w % 64 == 0 and h % 64 == 0 for w, h in resos)


@pytest.mark.parametrize(("settings", "size", "bucket", "resized", "crop"), [
    (SD15, (1000, 1500), (384, 640), (427, 640), (21, 0, 405, 640)),      # reference example
    (SD15, (1920, 1080), (640, 384), (683, 384), (21, 0, 661, 384)),      # reference example
    (SD15, (800, 600), (576, 448), (597, 448), (10, 0, 586, 448)),
    (SD15, (512, 512), (512, 512), (512, 512), (0, 0, 512, 512)),
    (SD15, (640, 384), (640, 384), (640, 384), (0, 0, 640, 384)),         # exact bucket kept
    (SD15, (2000, 2000), (512, 512), (512, 512), (0, 0, 512, 512)),
    (SD15, (100, 2000), (256, 1024), (256, 5120), (0, 2048, 256, 3072)),
    (SDXL, (1000, 1500), (832, 1216), (832, 1248), (0, 16, 832, 1232)),
    (SDXL, (3000, 2000), (1216, 832), (1248, 832), (16, 0, 1232, 832)),
])
def test_select_bucket_matches_hand_computed_kohya(settings, size, bucket, resized, crop):
    c = BucketManager(settings).choose(*size)
    assert (c.bucket, c.resized, c.crop) == (bucket, resized, crop)
    assert c.crop[2] - c.crop[0] == bucket[0] and c.crop[3] - c.crop[1] == bucket[1]


@pytest.mark.parametrize(("settings", "size", "bucket", "resized"), [
    (SD15, (1000, 1500), (384, 576), (384, 576)),     # reference example
    (SD15, (300, 400), (256, 384), (300, 400)),       # reference example: crop only
    (SD15, (777, 555), (512, 384), (538, 384)),       # reference example
    (SDXL, (3000, 2000), (1216, 832), (1248, 832)),
])
def test_no_upscale_matches_hand_computed_kohya(settings, size, bucket, resized):
    s = BucketSettings(settings.resolution, settings.min_reso, settings.max_reso, settings.step, no_upscale=True)
    c = BucketManager(s).choose(*size)
    assert (c.bucket, c.resized) == (bucket, resized)


def test_flags_upscale_and_detail():
    m = BucketManager(SD15)
    assert m.choose(100, 100).needs_upscale and not m.choose(100, 100).loses_detail
    assert m.choose(4000, 4000).loses_detail and not m.choose(4000, 4000).needs_upscale
    assert not m.choose(600, 600).needs_upscale


def test_min_max_snapped_and_checked():
    assert BucketSettings(min_reso=300, max_reso=1000).snapped() == (256, 1024)
    with pytest.raises(ValueError, match="max_reso"):
        BucketManager(BucketSettings(resolution=(1024, 1024), max_reso=512))


def test_bucketing_off_resizes_and_centre_crops_like_kohya():
    # kohya make_buckets without buckets: select_bucket over the one predefined size (W, H); the image
    # is scaled to cover it (int(x * scale + 0.5)) and centre-cropped; nothing is dropped
    m = BucketManager(BucketSettings(enable=False))
    assert m.choose(512, 512).problem is None and m.choose(512, 512).resized == (512, 512)
    wide = m.choose(640, 480)  # scale 512/480: 682.67 -> 683 wide, crop (683 - 512) // 2 = 85
    assert wide.problem is None and wide.bucket == (512, 512) and wide.resized == (683, 512)
    assert wide.crop == (85, 0, 597, 512)
    small = m.choose(100, 300)  # enlarged: scale 512/100, 300 * 5.12 = 1536
    assert small.bucket == (512, 512) and small.resized == (512, 1536) and small.crop == (0, 512, 512, 1024)
    assert BucketManager(BucketSettings(enable=False, no_upscale=True)).choose(100, 300).resized == (512, 1536)


def test_tiny_image_in_no_upscale_is_unusable_not_a_crash():
    m = BucketManager(BucketSettings(no_upscale=True))
    assert "smaller than one bucket step" in m.choose(40, 600).problem


def test_assign_histogram_with_repeats():
    rep = assign([(1000, 1500), (1000, 1500), (512, 512), (100, 100)], SD15, weights=[3, 3, 2, 1])
    assert rep.histogram == {(384, 640): 6, (512, 512): 3}
    assert rep.needs_upscale == 1 and len(rep.choices) == 4


def test_trainer_view_is_the_bucket_size():
    m = BucketManager(SD15)
    img = pattern(800, 600)
    c = m.choose(*img.size)
    out = trainer_view(img, c)
    assert out.size == c.bucket == (576, 448)


def test_sdxl_crop_ltrb():
    # kohya get_crop_ltrb for a 1000x1500 image in the 832x1216 bucket: bucket is wider → match height
    left, top, right, bottom = sdxl_crop_ltrb((832, 1216), (1000, 1500))
    assert (left, top, bottom) == (10.0, 0, 1216) and right == pytest.approx(10 + 1216 * 1000 / 1500)
