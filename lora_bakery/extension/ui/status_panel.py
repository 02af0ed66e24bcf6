"""The "Environment" accordion: which host we run on, what model it has, which features work.

Users hit missing dependencies and unloaded models first; this panel answers "will it work
here?" before they fill a form. Every handler returns a message, never raises into gradio.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import gradio as gr

from lora_bakery.extension.ui import compat
from lora_bakery.extension.ui.context import UiContext

if TYPE_CHECKING:
    from lora_bakery.extension.host.base import ModelParts

HOST_LABELS = {
    "a1111": "AUTOMATIC1111 webui",
    "forge": "Forge",
    "diffusers": "standalone (diffusers)",
}


def format_count(n: int) -> str:
    """``1234567`` → ``"1.23 M"``: parameter counts people can compare at a glance."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.2f} {unit}"
    return str(n)


def describe_model(parts: ModelParts) -> str:
    """Markdown summary of the host's loaded model.

    Args:
        parts (`ModelParts`): what ``Host.model()`` returned.

    Returns:
        `str`: architecture, prediction type, parameter count, checkpoint name (and hash if known).
    """
    n_params = sum(int(t.numel()) for t in parts.parameters.values())
    rows = [
        ("Architecture", f"`{parts.architecture}`"),
        ("Prediction", f"`{parts.prediction}`"),
        ("Parameters", f"{format_count(n_params)} ({len(parts.parameters)} tensors)"),
        ("Checkpoint", f"`{parts.checkpoint_name or 'unknown'}`"),
    ]
    if parts.checkpoint_hash:
        rows.append(("Hash", f"`{parts.checkpoint_hash[:10]}`"))
    if parts.clip_skip != 1:
        rows.append(("Clip skip", str(parts.clip_skip)))
    placement = getattr(parts, "placement", None)
    if placement is not None:
        rows.append(("GPU", f"webui {html.escape(str(placement.description))}: a bake caches latents and, when the "
                            "captions allow, text-encoder outputs first, then trains with only the U-Net on the GPU; "
                            "the webui's own placement is restored afterwards"))
    return "**Model**\n\n" + "\n".join(f"- **{k}:** {v}" for k, v in rows)


def check_model(host_factory: Callable[[], object] | None, unavailable: str | None = None) -> str:
    """Ask the host for its model and describe it; any failure becomes a readable message.

    Args:
        host_factory (`Callable[[], Host]`, *optional*): as in ``UiContext``.
        unavailable (`str`, *optional*): why there is no host (e.g. the Forge message), shown
            when ``host_factory`` is ``None``.

    Returns:
        `str`: Markdown for the panel.
    """
    if host_factory is None:
        return compat.ERROR_PREFIX + (unavailable or "no model host is available in this session.")
    try:
        parts = host_factory().model()  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - shown to the user instead of a traceback
        compat.logger.exception("LoRA Bakery: Check model failed")
        return compat.ERROR_PREFIX + compat.error_message(exc)
    return describe_model(parts)


def describe_features(status: Mapping[str, tuple[bool, str]]) -> str:
    """Markdown list of optional features and whether their dependencies are present.

    Args:
        status (`Mapping[str, tuple[bool, str]]`): ``lora_bakery.deps.feature_status()``.

    Returns:
        `str`: one line per feature: name, "ready"/"unavailable", detail.
    """
    if not status:
        return "No optional features registered."
    return "**Features**\n\n" + "\n".join(
        f"- **{html.escape(name)}** ({'ready' if ok else 'unavailable'}): {html.escape(detail)}"
        for name, (ok, detail) in sorted(status.items())
    )


def feature_status_markdown() -> str:
    """``describe_features(feature_status())``, or a notice when the check itself cannot run."""
    try:
        from lora_bakery.deps import feature_status

        return describe_features(feature_status())
    except Exception as exc:  # noqa: BLE001 - the panel must render even if deps.py is broken
        compat.logger.warning("LoRA Bakery: feature status unavailable: %s", exc)
        return f"Feature status unavailable ({compat.error_message(exc)})."


def build(ctx: UiContext) -> None:
    """Place the Environment accordion in the open Blocks context.

    Args:
        ctx (`UiContext`): its ``host_name`` and ``host_factory`` are shown and queried.
    """
    host_label = HOST_LABELS.get(ctx.host_name, ctx.host_name)
    with gr.Accordion("Environment", open=False, elem_id="lora_bakery_env"):
        gr.Markdown(f"**Host:** {host_label}", elem_id="lora_bakery_env_host")
        with gr.Row():
            check = gr.Button("Check model", elem_id="lora_bakery_check_model")
            refresh = gr.Button("Refresh features", elem_id="lora_bakery_check_features")
        model_md = gr.Markdown("**Model:** not checked yet.", elem_id="lora_bakery_model_info")
        # A callable value runs on each page load (both gradio versions), not at UI build time.
        features = compat.guarded()(feature_status_markdown)
        features_md = gr.Markdown(value=features, elem_id="lora_bakery_features")
    check.click(fn=lambda: check_model(ctx.host_factory, ctx.forge_message), inputs=[], outputs=[model_md])
    refresh.click(fn=features, inputs=[], outputs=[features_md])
