"""What every tab receives: the host (lazily), where we run, the job queue and settings.

Kept in its own module (not in ``ui/__init__.py``) so tab modules can import it without a
circular import, and so ``scripts/lora_bakery.py`` and ``app.py`` build one the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lora_bakery.extension.host.base import Host

#: Tab keys, in display order. The tab's elem_id is ``lora_bakery_tab_<key>``.
TAB_KEYS: tuple[str, ...] = ("dataset", "reg", "bake", "leco", "compare")

#: Tabs that need to train on, or generate with, the host's loaded model. In Forge (whose weights
#: load under ``torch.inference_mode()``, see reference/a1111-host.md) these show
#: ``UiContext.forge_message`` until a ForgeHost supports them. Dataset work needs no model.
FORGE_UNSUPPORTED_TABS: frozenset[str] = frozenset({"reg", "bake", "leco", "compare"})


@dataclass
class UiContext:
    """Everything the tabs need from their surroundings, so they never import the webui.

    Attributes:
        host_factory (`Callable[[], Host]`, *optional*): returns the Host. Lazy because creating it
            may load a model (standalone); call it only inside handlers. ``None`` means no model
            can be reached (the UI says so instead of raising).
        host_name (`str`, defaults to ``"a1111"``): ``"a1111"``, ``"forge"`` or ``"diffusers"``.
        forge_message (`str`, *optional*): set when running inside Forge; the tabs listed in
            ``unsupported_tabs`` show this message instead of their controls.
        jobs (`Any`, *optional*): the ``JobQueue`` of ``lora_bakery.extension.jobs``.
        settings (`dict`, defaults to ``{}``): user settings (A1111 ``opts`` values or app flags).
        unsupported_tabs (`frozenset[str]`, defaults to ``FORGE_UNSUPPORTED_TABS``): tab keys
            that show ``forge_message`` when it is set.
        notice (`str`, *optional*): one Markdown line shown above the tabs (e.g. "running on the
            embedded tiny model").
        gpu_call (`Callable`, *optional*): the host's wrapper for handlers that use the GPU in the
            handler's own thread (A1111: ``modules.call_queue.wrap_gradio_gpu_call``, which takes
            the webui's queue lock and drives its progress bar). ``None`` standalone, where long
            work runs on the job queue's worker instead.
        paste_buttons (`Callable`, *optional*): makes the webui's own "Send to txt2img" buttons for a
            Textbox holding an infotext (A1111: ``host.a1111_paste.send_buttons``). ``None``
            standalone, where the text is there to copy.
    """

    host_factory: Callable[[], Host] | None = None
    host_name: str = "a1111"
    forge_message: str | None = None
    jobs: Any = None
    settings: dict = field(default_factory=dict)
    unsupported_tabs: frozenset[str] = FORGE_UNSUPPORTED_TABS
    notice: str | None = None
    gpu_call: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None
    paste_buttons: Callable[[Any], Any] | None = None

    def blocked_message(self, tab_key: str) -> str | None:
        """The message a tab shows instead of its controls, or ``None`` when it is usable here.

        Args:
            tab_key (`str`): one of ``TAB_KEYS``.

        Returns:
            `str | None`: ``forge_message`` when running in Forge and the tab is unsupported there.
        """
        if self.forge_message and tab_key in self.unsupported_tabs:
            return self.forge_message
        return None


def tab_elem_id(tab_key: str) -> str:
    """The DOM id of a sub-tab (gradio 4 gives its button ``<id>-button``)."""
    return f"lora_bakery_tab_{tab_key}"
