"""The webui's server facts for the API gates: ``--api-auth``, how it listens, its data folders.

A1111 1.10.1 (``modules/cmd_args.py``, ``modules/shared_cmd_options.py``): ``--api-auth`` is
``"u1:p1,u2:p2"`` (its ``Api`` splits on ``,`` then ``:`` and compares passwords with
``secrets.compare_digest``; there is no file form for the API); the webui counts as non-local
under ``--share``, ``--listen``, ``--ngrok`` or any ``--server-name``, and then disables
extension installs unless ``--enable-insecure-extension-access``. The Lora folder is the
built-in Lora extension's ``--lora-dir`` (default ``models/Lora``); outputs go to
``paths_internal.default_output_dir`` (``<data dir>/outputs``) unless the output settings say
otherwise. Forge keeps the same names. Every read is a ``getattr`` with a default, so a flag a
fork lacks reads as "not given".
"""

from __future__ import annotations

from lora_bakery.extension.host.base import ServerFacts

#: Output-folder options (Settings → Paths for saving) whose folders the API may use.
OUTPUT_OPTIONS = ("outdir_samples", "outdir_txt2img_samples", "outdir_img2img_samples", "outdir_grids",
                  "outdir_save")


def _data_folders(shared) -> list[str]:
    folders = [getattr(shared.cmd_opts, "lora_dir", None)]
    try:
        from modules import paths_internal

        folders.append(getattr(paths_internal, "default_output_dir", None))
    except ImportError:  # a fork without paths_internal: the settings below still name the outputs
        pass
    folders += [getattr(shared.opts, key, None) for key in OUTPUT_OPTIONS]
    return [str(f) for f in folders if isinstance(f, str) and f.strip()]


def server_facts() -> ServerFacts:
    """The running webui's :class:`ServerFacts` (read at call time from ``shared.cmd_opts``)."""
    from modules import shared

    opts = shared.cmd_opts
    return ServerFacts(
        api_auth=getattr(opts, "api_auth", None) or None,
        listen=bool(getattr(opts, "listen", False)),
        share=bool(getattr(opts, "share", False)),
        ngrok=bool(getattr(opts, "ngrok", None)),
        server_name=getattr(opts, "server_name", None) or None,
        insecure_extension_access=bool(getattr(opts, "enable_insecure_extension_access", False)),
        data_folders=tuple(_data_folders(shared)),
    )
