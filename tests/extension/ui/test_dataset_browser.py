"""The Dataset tab in headless Chromium: load a folder, tag it, add a trigger, prune a tag, undo.

Checks the caption files on disk after every step, and that each undo brings them back byte for
byte. Runs on the gradio of the environment (3.41.2 A1111 env, 4.44 standalone); skips without
Chromium/Playwright like ``test_browser.py``, whose app fixture and helpers it reuses.
"""

from __future__ import annotations

import re

import pytest

from lora_bakery.extension.tagger.tiny import write_tiny_tagger
from tests.extension.dataset_ops.helpers import make_colour_dataset, tree_digest
from tests.extension.ui.test_browser import _by_id, _page, _save_screenshot, app_url  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

STEP_TIMEOUT_MS = 120_000


def _fill(page, elem_id: str, text: str) -> None:
    """Type into a gradio Textbox (a textarea or an input, depending on the version)."""
    box = page.locator(f"#{elem_id} textarea, #{elem_id} input").first
    box.fill(text)
    box.press("Tab")  # gradio 3 takes the value on change/blur


def _subtab(page, label: str) -> None:
    nav = page.locator("#lora_bakery_ds_tabs .tab-nav button")
    nav.filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).click()


def _captions(root) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.txt")) if ".bakery" not in p.parts}


def test_tag_trigger_prune_and_undo_in_the_browser(app_url, tmp_path):  # noqa: F811 - the imported fixture
    from playwright.sync_api import expect

    root = make_colour_dataset(tmp_path / "train")
    model = write_tiny_tagger(tmp_path / "tagger", "v3", size=32)
    untouched = tree_digest(root)
    with _page(app_url, wait_until="load") as (page, watched):
        expect(page.locator("#lora_bakery_tabs")).to_be_visible(timeout=60_000)

        # 1. load the folder
        _fill(page, "lora_bakery_ds_root", str(root))
        _by_id(page, "lora_bakery_ds_scan").click()
        expect(_by_id(page, "lora_bakery_ds_summary")).to_contain_text("4 images", timeout=STEP_TIMEOUT_MS)

        # 2. tag it with the tiny tagger
        _subtab(page, "Tagging")
        _fill(page, "lora_bakery_ds_tag_model", str(model))
        _by_id(page, "lora_bakery_ds_tag_run").click()
        expect(_by_id(page, "lora_bakery_ds_tag_result")).to_contain_text("Tagged 4", timeout=STEP_TIMEOUT_MS)
        tagged = _captions(root)
        assert set(tagged) == {"red.txt", "green.txt", "blue.txt", "yellow.txt"}
        assert "red theme" in tagged["red.txt"] and "1girl" in tagged["red.txt"]
        after_tag = tree_digest(root)

        # 3. add a trigger (the default batch operation)
        _subtab(page, "Captions")
        _fill(page, "lora_bakery_ds_cap_triggers", "mychar")
        _by_id(page, "lora_bakery_ds_cap_apply").click()
        result = _by_id(page, "lora_bakery_ds_cap_result")
        expect(result).to_contain_text("Applied", timeout=STEP_TIMEOUT_MS)
        assert all(text.startswith("mychar, ||| ") for text in _captions(root).values())
        after_trigger = tree_digest(root)

        # 4. prune a tag
        _by_id(page, "lora_bakery_ds_cap_op").get_by_text("remove-tags", exact=True).click()
        _fill(page, "lora_bakery_ds_cap_patterns", "1girl")
        _by_id(page, "lora_bakery_ds_cap_apply").click()
        expect(result).to_contain_text("remove-tags: 4 write", timeout=STEP_TIMEOUT_MS)
        pruned = _captions(root)
        assert all("1girl" not in text and text.startswith("mychar, ||| ") for text in pruned.values())
        freq = _by_id(page, "lora_bakery_ds_cap_freq")
        expect(freq).to_contain_text("mychar", timeout=STEP_TIMEOUT_MS)
        expect(freq).not_to_contain_text("1girl", timeout=STEP_TIMEOUT_MS)

        # 5. undo, step by step: byte-identical to before each change
        message = _by_id(page, "lora_bakery_ds_message")
        for expected in (after_trigger, after_tag, untouched):
            previous = message.inner_text()
            _by_id(page, "lora_bakery_ds_undo_last").click()
            expect(message).not_to_have_text(previous, timeout=STEP_TIMEOUT_MS)
            expect(message).to_contain_text("Undone")
            _wait_digest(root, expected)
            if expected is after_trigger:  # the tag frequency table follows the undo
                expect(freq).to_contain_text("1girl", timeout=STEP_TIMEOUT_MS)
        assert not _captions(root)
        _save_screenshot(page, tmp_path, "lora_bakery_dataset.png")
    watched.assert_clean()


def _wait_digest(root, expected: dict[str, str], timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tree_digest(root) == expected:
            return
        time.sleep(0.2)
    assert tree_digest(root) == expected, "undo did not restore the files byte for byte"
