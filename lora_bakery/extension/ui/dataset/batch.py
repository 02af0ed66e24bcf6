"""Caption batch operations on the filtered set: preview → apply (backed up) → undo.

Rule-based operations (consolidate, synonyms, prune, useless) list their proposed rules with
counts after **Preview**; untick a rule to leave it out, then **Apply**. Every apply plans again
from the caption files as they are now.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from lora_bakery.extension.dataset_ops.caption_ops import CAPTION_OPS
from lora_bakery.extension.ui.context import UiContext
from lora_bakery.extension.ui.dataset import common

DIFF_COLUMNS = ["image", "change", "caption before", "caption after"]
HELP = "\n".join(f"- **{name}**: {text}" for name, text in CAPTION_OPS.items())


def batch_params(triggers: str, separator: bool, patterns: str, mapping: str, trigger: str, pieces: str,
                 underscores: str, escape: str, lowercase: bool, merge: bool, create_missing: bool,
                 all_of: str, any_of: str, none_of: str, proposed: str | None,
                 kept: list[str] | None) -> dict[str, Any]:
    """The operation's params from the panel (``skip_rules`` = proposed rules, one per line, the user unticked)."""
    skip = [r for r in (proposed or "").splitlines() if r and r not in set(kept or [])]
    return {"triggers": triggers, "separator": separator, "patterns": patterns, "mapping": mapping,
            "trigger": trigger, "pieces": pieces, "underscores": underscores,
            "escape": None if escape == "keep" else escape, "lowercase": lowercase, "merge": merge,
            "create_missing": create_missing, "all_of": all_of, "any_of": any_of, "none_of": none_of,
            "skip_rules": skip}


def _rule_label(rule: dict[str, Any]) -> str:
    return rule["rule"]


def run_batch(root: str, op: str, params: dict[str, Any], apply: bool) -> tuple[str, Any, Any, str]:
    """(Markdown, diff table, rules CheckboxGroup update, proposed rules one per line) for previewing/applying ``op``."""
    from lora_bakery.extension.dataset_ops import registry

    if not op:
        raise ValueError("choose an operation")
    if apply:
        done, record = registry.apply(root, op, params)
    else:
        done, record = registry.preview(root, op, params), None
    diffs = done.extra.get("diffs", {})
    new_text = {c.path: (c.new_bytes or b"").decode("utf-8", "replace") for c in done.plan.changes}
    old_text = {r["path"]: r["before"] or "" for r in done.extra.get("captions", [])}
    from lora_bakery.extension.dataset_ops.captions import caption_file

    # whole texts, every line (the trainer reads line 1; the edit touches only that line)
    rows = [{"image": k, "change": d, "caption before": old_text.get(caption_file(k), ""),
             "caption after": new_text.get(caption_file(k), "")} for k, d in list(diffs.items())[: common.MAX_ROWS]]
    if not diffs and done.plan.changes:  # rewrite-utf8: no tag diff, show the files
        rows = [{"image": c.path, "change": c.description, "caption before": old_text.get(c.path, ""),
                 "caption after": new_text.get(c.path, "")} for c in done.plan.changes[: common.MAX_ROWS]]
    skipped = len(done.plan.skipped)
    rows += [{"image": path, "change": f"left alone: {why}", "caption before": "", "caption after": ""}
             for path, why in done.plan.skipped[: max(0, common.MAX_ROWS - len(rows))]]
    md = (f"Filtered set: **{done.extra.get('filtered', '?')}** images; "
          + common.plan_markdown(done, record) + (f"\n\n{skipped} caption(s) left alone: listed at the end of the "
                                                  "table with the reason." if skipped else ""))
    proposed = [_rule_label(r) for r in done.extra.get("rules", [])]
    skip = set(params.get("skip_rules") or [])
    counts = {r["rule"]: r["count"] for r in done.extra.get("rules", [])}
    rules_update = gr.update(choices=proposed, value=[r for r in proposed if r not in skip],
                             label=f"Rules ({len(proposed)}; counts: "
                                   + ", ".join(str(counts[r]) for r in proposed[:20]) + ")" if proposed else "Rules")
    return md, common.frame(rows, DIFF_COLUMNS), rules_update, "\n".join(proposed)


def build(ctx: UiContext, root: Any, filters: dict[str, Any]) -> None:
    """The batch operations panel under the caption editor (uses its filter)."""
    with gr.Accordion("What each operation does", open=False):
        gr.Markdown(HELP)
    op = gr.Radio(list(CAPTION_OPS), value="add-triggers", label="Batch operation (on the filtered set)",
                  elem_id="lora_bakery_ds_cap_op")
    with gr.Row():
        triggers = gr.Textbox(label="Trigger tag(s), in order (add-triggers; kept first by sort-tags)",
                              elem_id="lora_bakery_ds_cap_triggers")
        separator = gr.Checkbox(value=True, label="Insert ||| after triggers")
        trigger = gr.Textbox(label="Trigger that absorbs pruned tags (prune-traits / prune-outfit)",
                             elem_id="lora_bakery_ds_cap_trigger")
    with gr.Row():
        patterns = gr.Textbox(label="Tags / patterns (remove-tags, remove-useless, prune-traits extra); * glob, re:regex",
                              elem_id="lora_bakery_ds_cap_patterns")
        mapping = gr.Textbox(label="Pairs 'old=new; …' (replace-tags; synonyms: variant=canonical)",
                             elem_id="lora_bakery_ds_cap_mapping")
        pieces = gr.Textbox(label="Outfit pieces (prune-outfit; empty = suggested)", elem_id="lora_bakery_ds_cap_pieces")
    with gr.Row():
        underscores = gr.Radio(["spaces", "underscores", "keep"], value="spaces", label="normalize-tags: underscores")
        escape = gr.Radio(["keep", "escape", "unescape"], value="keep", label="normalize-tags: parentheses")
        lowercase = gr.Checkbox(value=False, label="normalize-tags: lowercase")
        merge = gr.Checkbox(value=False, label="consolidate: also merge tags sharing a noun")
        create_missing = gr.Checkbox(value=False, label="Also create missing captions")
    rules = gr.CheckboxGroup([], value=[], label="Rules (after Preview; untick to leave one out)",
                             elem_id="lora_bakery_ds_cap_rules")
    proposed = gr.Textbox(value="", visible=False, elem_id="lora_bakery_ds_cap_proposed")  # one rule per line
    with gr.Row():
        preview_btn = gr.Button("Preview", elem_id="lora_bakery_ds_cap_preview")
        apply_btn = gr.Button("Apply", variant="primary", elem_id="lora_bakery_ds_cap_apply")
    result = gr.Markdown("", elem_id="lora_bakery_ds_cap_result")
    diff = common.dataframe("Changes", DIFF_COLUMNS, "lora_bakery_ds_cap_diff")
    inputs = [triggers, separator, patterns, mapping, trigger, pieces, underscores, escape, lowercase, merge,
              create_missing, filters["all_of"], filters["any_of"], filters["none_of"], proposed, rules]

    def handler(apply: bool):
        @common.guarded(4)
        def run(path: str, name: str, *values: Any):
            return run_batch(path, name, batch_params(*values), apply)

        return run

    outputs = [result, diff, rules, proposed]
    preview_btn.click(handler(False), inputs=[root, op, *inputs], outputs=outputs)
    event = apply_btn.click(handler(True), inputs=[root, op, *inputs], outputs=outputs)
    event.then(filters["refresh_fn"], inputs=filters["refresh_inputs"], outputs=filters["refresh_outputs"])
    # A new operation proposes its own rules: forget the previous one's.
    op.change(lambda: (gr.update(choices=[], value=[]), ""), inputs=[], outputs=[rules, proposed])
