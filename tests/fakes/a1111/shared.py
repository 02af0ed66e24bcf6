"""Fake ``modules.shared``: ``sd_model``, ``state``, ``opts`` and the option classes (A1111 1.10.1
``modules/shared.py``, ``options.py``, ``shared_options.py``). ``reset()`` is a test helper."""

from types import SimpleNamespace

from . import shared_state

sd_model = None
state = shared_state.State()


def default_cmd_opts():
    """The flags we read, at A1111 1.10.1's defaults (``modules/cmd_args.py``; ``lora_dir`` comes
    from the built-in Lora extension's preload, ``models/Lora``)."""
    return SimpleNamespace(lowvram=False, medvram=False, medvram_sdxl=False, lora_dir="", api=False, nowebui=False, api_auth=None,
                           listen=False, share=False, ngrok=None, server_name=None,
                           enable_insecure_extension_access=False)


cmd_opts = default_cmd_opts()


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None, section=None,
                 refresh=None, comment_before="", comment_after="", infotext=None, restrict_api=False, category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.onchange = onchange
        self.section = section
        self.category_id = category_id
        self.refresh = refresh
        self.do_not_save = False
        self.comment_before = comment_before
        self.comment_after = comment_after
        self.infotext = infotext
        self.restrict_api = restrict_api

    def info(self, info):
        self.comment_after += f"<span class='info'>({info})</span>"
        return self

    def needs_reload_ui(self):
        self.comment_after += " <span class='info'>(requires Reload UI)</span>"
        return self

    def needs_restart(self):
        self.comment_after += " <span class='info'>(requires restart)</span>"
        return self


def options_section(section_identifier, options_dict):
    for v in options_dict.values():
        if len(section_identifier) == 2:
            v.section = section_identifier
        elif len(section_identifier) == 3:
            v.section = section_identifier[0:2]
            v.category_id = section_identifier[2]
    return options_dict


class Options:
    """Values live in ``data``; attribute reads fall back to registered defaults (as A1111's Options)."""

    def __init__(self, **values):
        object.__setattr__(self, "data", dict(values))
        object.__setattr__(self, "data_labels", {})

    def add_option(self, key, info):
        self.data_labels[key] = info
        if key not in self.data:
            self.data[key] = info.default

    def __getattr__(self, item):
        data = object.__getattribute__(self, "data")
        if item in data:
            return data[item]
        labels = object.__getattribute__(self, "data_labels")
        if item in labels:
            return labels[item].default
        raise AttributeError(item)

    def __setattr__(self, key, value):
        self.data[key] = value


def default_opts():
    return Options(CLIP_stop_at_last_layers=1, lora_functional=False, lora_in_memory_limit=0,
                   training_xattention_optimizations=False, outdir_txt2img_samples="outputs/txt2img-images")


opts = default_opts()


def reset():
    global sd_model, state, opts, cmd_opts
    sd_model = None
    state = shared_state.State()
    opts = default_opts()
    cmd_opts = default_cmd_opts()
