"""Caption editor: tag frequency table (total and per folder), tag filter, paginated gallery, per-image editing.

The filter (all / any / none of these tags) also chooses the set the batch operations work on.
The gallery shows pages of :data:`PAGE_SIZE` cached thumbnails, so 2,000 images stay responsive;
clicking an image loads its caption for editing, and **Save caption** writes it with a backup.
"""

# No ``from __future__ import annotations`` here: gradio finds ``gr.SelectData`` by the real annotation.

from typing import Any

import gradio as gr

from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common, thumbs

PAGE_SIZE = 48
#: Rows of the frequency table shown (most frequent first, or as sorted).
MAX_TAG_ROWS = 500


def load(root: str) -> Any:
    """Scan ``root`` (cached) and read every caption (``dataset_ops.captions.CaptionSet``)."""
    from lora_bakery.extension.dataset.scan import scan
    from lora_bakery.extension.dataset_ops import registry
    from lora_bakery.extension.dataset_ops.captions import load_captions

    return load_captions(scan(registry._root(root)))


def filtered(captions: Any, all_of: str, any_of: str, none_of: str) -> list[str]:
    """Image keys passing the tag filter."""
    from lora_bakery.extension.dataset.tags.batch import parse_dataset
    from lora_bakery.extension.dataset_ops.caption_ops import filter_keys

    return filter_keys(parse_dataset(captions.trained_lines()), {"all_of": all_of, "any_of": any_of, "none_of": none_of})


def frequency(root: str, sort_by: str, all_of: str, any_of: str, none_of: str) -> tuple[str, Any, Any]:
    """(Markdown, frequency table, sort choices update) for the filtered set."""
    from lora_bakery.extension.dataset.tags.batch import parse_dataset
    from lora_bakery.extension.dataset.tags.stats import flag_dataset, frequency_table

    captions = load(root)
    keys = filtered(captions, all_of, any_of, none_of)
    lines = captions.trained_lines()  # tags of the line the trainer reads
    lists = parse_dataset({k: lines[k] for k in keys})
    rows = frequency_table(lists)
    folders = sorted({f for r in rows for f in r.folders})
    sort_by = sort_by or "count"
    if sort_by == "tag":
        rows.sort(key=lambda r: r.tag)
    elif sort_by in folders:
        rows.sort(key=lambda r: (-r.folders.get(sort_by, 0), r.tag))
    columns = ["tag", "total", *folders]
    data = [{"tag": r.tag, "total": r.total, **{f: r.folders.get(f, 0) for f in folders}} for r in rows[:MAX_TAG_ROWS]]
    flags = flag_dataset({k: (None if k in captions.missing else captions.texts[k]) for k in keys})
    not_utf8 = [k for k in keys if k in captions.encodings and captions.encodings[k] not in ("utf-8", "utf-8-sig")]
    md = (f"**{len(keys)}** of {len(captions.texts)} images match the filter; **{len(rows)}** distinct tags. "
          f"Flagged captions: {len(flags)} (missing/empty/too long/duplicates); not UTF-8: {len(not_utf8)}"
          + (" — use the batch operation *rewrite-utf8*." if not_utf8 else "."))
    choices = gr.update(choices=["count", "tag", *folders], value=sort_by)
    return md, common.frame(data, columns), choices


def page(root: str, all_of: str, any_of: str, none_of: str, number: float) -> tuple[Any, str, str, Any]:
    """(gallery items, page keys (one per line), page Markdown, page number) for page ``number`` (1-based) of the filtered set."""
    captions = load(root)
    keys = filtered(captions, all_of, any_of, none_of)
    pages = max(1, -(-len(keys) // PAGE_SIZE))
    n = min(max(1, int(number or 1)), pages)
    chunk = keys[(n - 1) * PAGE_SIZE: n * PAGE_SIZE]
    made = thumbs.thumbnails([captions.root / key for key in chunk])
    thumbs.prefetch([captions.root / key for key in keys[n * PAGE_SIZE: (n + 1) * PAGE_SIZE]])
    items = [(path or _missing_thumb(), f"{key}: {captions.texts.get(key, '')[:80]}") for key, path in zip(chunk, made)]
    return items, "\n".join(chunk), f"Page {n} of {pages} ({len(keys)} images).", n


def _missing_thumb() -> str:
    """A grey placeholder for unreadable images."""
    from PIL import Image

    return thumbs.from_image(Image.new("RGB", (64, 64), (128, 128, 128)))


def select(root: str, keys: str, evt: gr.SelectData) -> tuple[str, str]:
    """(selected key, its caption text) when a gallery image is clicked (``keys``: the page's, one per line)."""
    try:
        key = keys.splitlines()[int(evt.index)]
    except (IndexError, TypeError, ValueError):
        return "", ""
    return key, load(root).texts.get(key, "")


def save_caption(root: str, key: str, text: str) -> str:
    """Write one caption (backed up, undoable); a readable message either way."""
    from lora_bakery.extension.dataset import safety
    from lora_bakery.extension.dataset_ops import registry
    from lora_bakery.extension.dataset_ops.captions import plan_caption_texts

    try:
        if not key:
            raise ValueError("click an image in the gallery first")
        captions = load(root)
        if key not in captions.texts:
            raise ValueError(f"{key} is no longer in the dataset; refresh the gallery")
        plan = plan_caption_texts(captions, {key: text.strip()}, "edit-caption", "edited by hand")
        if plan.skipped:
            raise ValueError(f"{key}: {plan.skipped[0][1]}")
        if not plan.changes:
            return "Caption unchanged."
        rec = safety.apply(plan, registry._root(root))
    except Exception as exc:  # noqa: BLE001 - shown
        return common.friendly(exc)
    return f"Saved `{captions.files[key]}` (backup `{rec.path.name}`)."


def build(ctx: UiContext, root: Any) -> dict[str, Any]:
    """The frequency table, filter, gallery and per-image editor.

    Returns:
        `dict`: ``all_of``, ``any_of``, ``none_of`` (the filter Textboxes), ``refresh`` (a Button
        that reloads table and gallery) with its function, inputs and outputs, and ``follow_fn`` /
        ``follow_inputs`` (the same reload, skipped while nothing is loaded: chained after undos).
    """
    with gr.Row():
        all_of = gr.Textbox(label="Images with ALL of", placeholder="1girl, smile", elem_id="lora_bakery_ds_f_all")
        any_of = gr.Textbox(label="with ANY of", placeholder="red_hair, blue_hair", elem_id="lora_bakery_ds_f_any")
        none_of = gr.Textbox(label="with NONE of", placeholder="re:.*_background", elem_id="lora_bakery_ds_f_none")
    with gr.Row():
        refresh = gr.Button("Load / refresh captions", variant="primary", elem_id="lora_bakery_ds_cap_refresh")
        sort_by = gr.Dropdown(["count", "tag"], value="count", label="Sort tags by (count, tag or a folder)",
                              elem_id="lora_bakery_ds_cap_sort")
    stats_md = gr.Markdown("", elem_id="lora_bakery_ds_cap_stats")
    with gr.Accordion("Tag frequency", open=True):
        table = common.dataframe("Tags (captions holding each tag, total and per folder)", ["tag", "total"],
                                 "lora_bakery_ds_cap_freq")
    with gr.Accordion("Gallery", open=True):
        with gr.Row():
            prev_btn = gr.Button("◀ Previous page", elem_id="lora_bakery_ds_page_prev")
            number = gr.Number(value=1, label="Page", precision=0, elem_id="lora_bakery_ds_page")
            next_btn = gr.Button("Next page ▶", elem_id="lora_bakery_ds_page_next")
        page_md = gr.Markdown("", elem_id="lora_bakery_ds_page_info")
        images = common.gallery("Images (click one to edit its caption)", "lora_bakery_ds_cap_gallery", columns=8)
        # Page keys, one per line (a hidden Textbox, not gr.State: gradio 4 keeps a heartbeat
        # connection open for pages with State, so the page never goes network-idle).
        keys = gr.Textbox(value="", visible=False, elem_id="lora_bakery_ds_page_keys")
        with gr.Row():
            key = gr.Textbox(label="Image", interactive=False, elem_id="lora_bakery_ds_edit_key", scale=1)
            text = gr.Textbox(label="Caption", lines=3, elem_id="lora_bakery_ds_edit_text", scale=4)
        save = gr.Button("Save caption", elem_id="lora_bakery_ds_edit_save")
        saved = gr.Markdown("", elem_id="lora_bakery_ds_edit_result")

    filters = [all_of, any_of, none_of]
    freq = common.guarded(3)(frequency)
    paged = common.guarded(4)(page)

    def refresh_all(path: str, sort: str, a: str, b: str, c: str, n: float):
        md, tbl, choices = freq(path, sort, a, b, c)
        if not isinstance(md, str) or md.startswith("**Error"):
            return md, tbl, choices, gr.update(), gr.update(), gr.update(), gr.update()
        items, chunk, info, num = paged(path, a, b, c, n)
        if isinstance(items, str):  # the error message
            return items, tbl, choices, gr.update(), gr.update(), gr.update(), gr.update()
        return md, tbl, choices, items, chunk, info, num

    outputs = [stats_md, table, sort_by, images, keys, page_md, number]

    def refresh_if_loaded(shown: str, path: str, sort: str, a: str, b: str, c: str, n: float):
        """After an undo or a saved caption: reload table and gallery, but only once the user loaded them."""
        if not str(shown or "").strip():
            return tuple(gr.update() for _ in outputs)
        return refresh_all(path, sort, a, b, c, n)

    refresh.click(refresh_all, inputs=[root, sort_by, *filters, number], outputs=outputs)
    sort_by.select(freq, inputs=[root, sort_by, *filters], outputs=[stats_md, table, sort_by])
    step = {"prev": -1, "next": 1}

    def turn(direction: str):
        def go(path: str, a: str, b: str, c: str, n: float):
            out = paged(path, a, b, c, (n or 1) + step[direction])
            if isinstance(out[0], str):  # the error message
                return (out[0], *[gr.update()] * 3)
            return out[2], out[0], out[1], out[3]

        return go

    prev_btn.click(turn("prev"), inputs=[root, *filters, number], outputs=[page_md, images, keys, number])
    next_btn.click(turn("next"), inputs=[root, *filters, number], outputs=[page_md, images, keys, number])
    images.select(select, inputs=[root, keys], outputs=[key, text])
    follow_inputs = [stats_md, root, sort_by, *filters, number]
    save.click(save_caption, inputs=[root, key, text], outputs=[saved]).then(
        refresh_if_loaded, inputs=follow_inputs, outputs=outputs)
    return {"all_of": all_of, "any_of": any_of, "none_of": none_of, "refresh": refresh,
            "refresh_outputs": outputs, "refresh_fn": refresh_all, "refresh_inputs": [root, sort_by, *filters, number],
            "follow_fn": refresh_if_loaded, "follow_inputs": follow_inputs}
