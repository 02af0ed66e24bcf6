"""Standalone LoRA Bakery: the same tabs as inside A1111, over a ``DiffusersHost``.

Started by ``bakery app [--ckpt PATH] [--port N]`` or ``python -m lora_bakery.extension.app``.
Without ``--ckpt`` it runs on the embedded tiny SD1.5 model (random weights), so the UI can be
tried and tested with no download. Works with gradio 3.41.2 and 4.x. The ``/bakery/v1`` API on
the same server passes the ``ApiGates`` built from ``--auth``/``--listen``/``--allow``; the same
credentials are gradio's login for the UI.
"""

from __future__ import annotations

import os

# Before gradio is imported: gradio reads this at import time, and its analytics/version check
# would otherwise call out to the internet (closed on many training machines, and in CI).
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import logging  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING, Any  # noqa: E402

import gradio as gr  # noqa: E402

from lora_bakery.extension.ui import UiContext, build_tabs, compat  # noqa: E402

if TYPE_CHECKING:
    from lora_bakery.extension.api_gates import ApiGates
    from lora_bakery.extension.host.base import Host

logger = logging.getLogger(__name__)

DEFAULT_PORT = 7870
#: Handlers that may run at once. Long work runs in the job queue's thread, so handlers are short;
#: more than one keeps progress polls from waiting behind a slow "Check model".
CONCURRENCY = 4
TINY_NOTICE = (
    "Running on the **embedded tiny SD1.5 model** (random weights: for trying the tabs, its images "
    "are noise). Start with `bakery app --ckpt PATH.safetensors` to bake on your checkpoint."
)


class LazyHost:
    """``host_factory`` for the app: builds the ``DiffusersHost`` on first use, then reuses it.

    Creating the host is cheap, but resolving the tiny checkpoint may write it to disk and
    ``model()`` loads weights, so nothing happens before a handler asks.

    Args:
        ckpt (`str`, *optional*): single-file ``.safetensors`` checkpoint; ``None`` = tiny SD1.5.
        tokenizer_dir (`str`, *optional*): CLIP tokenizer folder, when not beside the checkpoint.
    """

    def __init__(self, ckpt: str | None, tokenizer_dir: str | None = None) -> None:
        self.ckpt = ckpt
        self.tokenizer_dir = tokenizer_dir
        self._host: Host | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Host:
        with self._lock:
            if self._host is None:
                from lora_bakery.extension.host.diffusers_host import DiffusersHost

                if self.ckpt:
                    path = Path(self.ckpt)
                else:
                    from lora_bakery.trainer.tiny import tiny_checkpoint

                    path = tiny_checkpoint("sd15")
                self._host = DiffusersHost(path, tokenizer_dir=self.tokenizer_dir)
            return self._host


def _make_jobs() -> Any:
    """The job queue (``lora_bakery.extension.jobs.JobQueue``), or ``None`` if it is not there yet."""
    try:
        from lora_bakery.extension.jobs import JobQueue
    except ModuleNotFoundError as exc:
        if exc.name != "lora_bakery.extension.jobs":
            raise
        logger.warning("LoRA Bakery: no job queue (lora_bakery.extension.jobs missing)")
        return None
    return JobQueue()


def make_context(ckpt: str | None = None, tokenizer_dir: str | None = None) -> UiContext:
    """The ``UiContext`` of the standalone app.

    Args:
        ckpt (`str`, *optional*): checkpoint path; ``None`` uses the embedded tiny SD1.5 model.
        tokenizer_dir (`str`, *optional*): CLIP tokenizer folder.

    Returns:
        `UiContext`: with a lazy, cached ``DiffusersHost`` factory and the job queue.
    """
    notice = TINY_NOTICE if not ckpt else f"Checkpoint: `{Path(ckpt).name}`"
    return UiContext(
        host_factory=LazyHost(ckpt, tokenizer_dir),
        host_name="diffusers",
        jobs=_make_jobs(),
        settings={"ckpt": ckpt, "tokenizer_dir": tokenizer_dir},
        notice=notice,
    )


def build_app(ctx: UiContext) -> gr.Blocks:
    """The standalone page: a title and the same ``build_tabs`` A1111 shows.

    Args:
        ctx (`UiContext`): see ``make_context``.

    Returns:
        `gr.Blocks`: not yet queued or launched.
    """
    with gr.Blocks(title="LoRA Bakery", theme=compat.offline_theme(), analytics_enabled=False) as demo:
        gr.Markdown("# LoRA Bakery", elem_id="lora_bakery_title")
        build_tabs(ctx)
    return demo


def mount_api(app: Any, ctx: UiContext, gates: ApiGates | None = None) -> bool:
    """Add the ``/bakery/v1`` routes to the running FastAPI app, as A1111's ``on_app_started`` does.

    Args:
        app (`FastAPI`): the served app.
        ctx (`UiContext`): its job queue and host.
        gates (`ApiGates`, *optional*): see ``api_gates``; default: loopback, no credentials,
            the cache and the folders opened in the tabs.

    Returns:
        `bool`: ``False`` when ``lora_bakery.extension.api`` does not exist (yet).
    """
    try:
        from lora_bakery.extension.api import mount
    except ModuleNotFoundError as exc:
        if exc.name != "lora_bakery.extension.api":
            raise
        logger.warning("LoRA Bakery: API routes not mounted (lora_bakery.extension.api missing)")
        return False
    if ctx.jobs is None:
        logger.warning("LoRA Bakery: API routes not mounted (no job queue)")
        return False
    if gates is None:
        from lora_bakery.extension.api_gates import ApiGates

        gates = ApiGates.for_app()
    mount(app, ctx.jobs, ctx.host_factory, host_name=ctx.host_name, gates=gates)
    return True


def free_port(start: int = DEFAULT_PORT, tries: int = 100) -> int:
    """The first port from ``start`` that 127.0.0.1 can bind (like A1111's 7860, 7861...)."""
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {start}..{start + tries - 1}")


def launch(
    ckpt: str | None,
    port: int | None,
    tokenizer_dir: str | None = None,
    share: bool = False,
    inbrowser: bool = False,
    block: bool = True,
    *,
    listen: bool = False,
    gates: ApiGates | None = None,
) -> gr.Blocks:
    """Start the standalone app on 127.0.0.1 (0.0.0.0 with ``listen``).

    Args:
        ckpt (`str`, *optional*): single-file checkpoint; ``None`` runs on the embedded tiny SD1.5 model.
        port (`int`, *optional*): port; ``None`` takes 7870 or the next free one.
        tokenizer_dir (`str`, *optional*): CLIP tokenizer folder, when not beside the checkpoint.
        share (`bool`, defaults to `False`): ask gradio for a public link (needs the internet).
        inbrowser (`bool`, defaults to `False`): open the page in the default browser.
        block (`bool`, defaults to `True`): serve until Ctrl-C; ``False`` returns at once (tests).
        listen (`bool`, defaults to `False`): serve on every interface.
        gates (`ApiGates`, *optional*): the API's gates (``cli.app.gates_from_args``); their
            credentials are also the UI's gradio login. Default: ``ApiGates.for_app`` for
            ``listen``/``share`` without credentials.

    Returns:
        `gr.Blocks`: the running app (``demo.close()`` stops it).
    """
    from lora_bakery.extension.api_gates import ApiGates

    gates = gates if gates is not None else ApiGates.for_app(listen=listen, share=share)
    ctx = make_context(ckpt, tokenizer_dir)
    demo = build_app(ctx)
    compat.ensure_event_loop()
    demo.queue(**compat.queue_kwargs(CONCURRENCY))
    app, _, _ = demo.launch(
        server_name="0.0.0.0" if listen else "127.0.0.1",
        server_port=port or free_port(),
        share=share,
        inbrowser=inbrowser,
        auth=list(gates.credentials.items()) or None,  # gradio's login (3.41 and 4.x take (user, password) pairs)
        prevent_thread_lock=True,
    )
    # Routes go on the app launch() returns, after start, exactly as A1111 does: in gradio 3.41
    # ``demo.app`` is a different App object from the one being served.
    mount_api(app, ctx, gates)
    if block:
        demo.block_thread()
    return demo


def main(argv: list[str] | None = None) -> None:
    """``python -m lora_bakery.extension.app [options]``: the same options as ``bakery app``."""
    import sys

    from lora_bakery.cli import main as cli_main

    raise SystemExit(cli_main(["app", *(sys.argv[1:] if argv is None else argv)]))


if __name__ == "__main__":
    main()
