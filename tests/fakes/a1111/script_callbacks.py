"""Fake ``modules.script_callbacks``: records every registration (A1111 1.10.1 signatures)."""

registered = {"ui_tabs": [], "ui_settings": [], "app_started": [], "script_unloaded": [], "before_ui": []}


def _add(kind, callback, name):
    registered[kind].append((callback, name))


def on_ui_tabs(callback, *, name=None):
    _add("ui_tabs", callback, name)


def on_ui_settings(callback, *, name=None):
    _add("ui_settings", callback, name)


def on_app_started(callback, *, name=None):
    _add("app_started", callback, name)


def on_script_unloaded(callback, *, name=None):
    _add("script_unloaded", callback, name)


def on_before_ui(callback, *, name=None):
    _add("before_ui", callback, name)


def reset():
    for v in registered.values():
        v.clear()
