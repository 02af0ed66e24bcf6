"""LoRA Bakery's entry point in AUTOMATIC1111 webui / Forge: registers the tab, settings and API.

A1111 executes this file by path (``scripts.load_scripts``, not added to ``sys.modules``) with the
extension folder first on ``sys.path`` *while loading*; the ``lora_bakery`` package sits in that
folder. Everything else lives in the package: this file only wires callbacks (STYLE §1).
"""

from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:  # loaded some other way (tests, another loader): make the package importable
    sys.path.append(_ROOT)

from modules import script_callbacks, shared  # noqa: E402

from lora_bakery.extension.host.forge_detect import FORGE_MESSAGE, FORGE_UNSUPPORTED, detect_forge  # noqa: E402
from lora_bakery.extension.jobs import default_queue  # noqa: E402

FORGE = detect_forge()
HOST_NAME = "forge" if FORGE else "a1111"
SECTION = ("lora_bakery", "LoRA Bakery", "training")

#: setting key (without the ``lora_bakery_`` prefix) -> (default, label)
SETTINGS = {
    "output_dir": ("", "Output folder for baked LoRAs (empty: the webui's Lora folder)"),
    "keep_backups": (20, "Dataset backups to keep per folder (caption/image edits can be undone)"),
    "default_tagger": ("wd-eva02-large-tagger-v3", "Default WD14 tagger model"),
    "compare_presets_file": (os.path.join(_ROOT, "lbwpresets.txt"), "Block-weight presets file (lbw format)"),
    "api_allowed_folders": ("", "Folders the HTTP API may use (/bakery/v1; one per line or comma-separated; the "
                                "Lora and outputs folders and folders opened in the tabs are always allowed)"),
}


def _sink_factory():
    from lora_bakery.extension.host.a1111 import A1111Progress

    return A1111Progress()


JOBS = default_queue(None if FORGE else _sink_factory)


def host_factory():
    """The Host of this webui (lazy: nothing is touched until a handler asks)."""
    from lora_bakery.extension.host.a1111 import A1111Host

    return A1111Host()


class LiveSettings(dict):
    """The ``lora_bakery_*`` options, read from ``shared.opts`` at each access (no Reload UI needed)."""

    def __getitem__(self, key):
        return getattr(shared.opts, f"lora_bakery_{key}", SETTINGS[key][0])

    def get(self, key, default=None):
        return self[key] if key in SETTINGS else default


def live_settings():
    return LiveSettings({key: default for key, (default, _) in SETTINGS.items()})


def on_ui_settings():
    import gradio as gr

    components = {"keep_backups": (gr.Slider, {"minimum": 0, "maximum": 200, "step": 1}),
                  "api_allowed_folders": (gr.Textbox, {"lines": 3})}
    options = {}
    for key, (default, label) in SETTINGS.items():
        component, args = components.get(key, (None, None))
        options[f"lora_bakery_{key}"] = shared.OptionInfo(default, label, component, args)
    for key, info in shared.options_section(SECTION, options).items():
        shared.opts.add_option(key, info)


def on_ui_tabs():
    import gradio as gr

    from lora_bakery.extension.ui import UiContext, build_tabs

    kwargs = dict(
        host_factory=None if FORGE else host_factory, host_name=HOST_NAME, jobs=JOBS,
        settings=live_settings(),
        forge_message=f"{FORGE_MESSAGE} ({FORGE})" if FORGE else None, unsupported_tabs=FORGE_UNSUPPORTED,
    )
    if not FORGE:
        from lora_bakery.extension.host.a1111_paste import send_buttons

        kwargs["gpu_call"] = host_factory().gpu_call  # wrap_gradio_gpu_call that exclusive() knows about
        kwargs["paste_buttons"] = send_buttons  # the webui's own "Send to txt2img" under Compare cells
    with gr.Blocks(analytics_enabled=False) as tab:
        build_tabs(UiContext(**kwargs))
    return [(tab, "LoRA Bakery", "lora_bakery")]


def on_app_started(demo, app):
    from lora_bakery.extension import api
    from lora_bakery.extension.api_gates import ApiGates
    from lora_bakery.extension.host.a1111_server import server_facts

    gates = ApiGates.for_webui(server_facts(), live_settings())
    api.mount(app, JOBS, None if FORGE else host_factory, host_name=HOST_NAME, gates=gates)


def on_before_ui():
    """Add "Bakery epoch" / "Bakery block preset" axes to A1111's own X/Y/Z plot script."""
    from lora_bakery.extension.compare.xyz import register_a1111_axes

    register_a1111_axes(lambda: getattr(shared.opts, "lora_bakery_compare_presets_file", "") or None)


script_callbacks.on_before_ui(on_before_ui)
script_callbacks.on_ui_settings(on_ui_settings)
script_callbacks.on_ui_tabs(on_ui_tabs)
script_callbacks.on_app_started(on_app_started)
