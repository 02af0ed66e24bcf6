"""``modules/infotext_utils.py`` of A1111 1.10.1, the parts an extension touches: paste buttons and the
infotext parser.

Faithful to the webui: ``create_buttons`` makes ``gr.Button("Send to <tab>", elem_id="<tab>_tab")``,
``register_paste_params_button`` only records the binding (the webui connects every recorded binding
in ``connect_paste_params_buttons`` after all tabs, extension tabs included, are built), and
``parse_generation_parameters`` splits prompt / ``Negative prompt:`` / the ``key: value`` last line
the same way (the last line counts as parameters only with at least 3 of them; ``WxH`` values
become ``key-1`` / ``key-2``). The hires-fix, clip-skip and override bookkeeping is left out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

re_param = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
re_imagesize = re.compile(r"^(\d+)x(\d+)$")

paste_fields: dict[str, dict[str, Any]] = {}
registered_param_bindings: list[ParamBinding] = []


@dataclass
class ParamBinding:
    paste_button: Any
    tabname: str
    source_text_component: Any = None
    source_image_component: Any = None
    source_tabname: str | None = None
    override_settings_component: Any = None
    paste_field_names: list[str] = field(default_factory=list)


def quote(text: Any) -> str:
    if "," not in str(text) and "\n" not in str(text) and ":" not in str(text):
        return str(text)
    return json.dumps(text, ensure_ascii=False)


def unquote(text: str) -> str:
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except Exception:
        return text


def create_buttons(tabs_list: list[str]) -> dict[str, Any]:
    import gradio as gr

    return {tab: gr.Button(f"Send to {tab}", elem_id=f"{tab}_tab") for tab in tabs_list}


def register_paste_params_button(binding: ParamBinding) -> None:
    registered_param_bindings.append(binding)


def parse_generation_parameters(x: str) -> dict[str, Any]:
    res: dict[str, Any] = {}
    prompt = ""
    negative_prompt = ""
    done_with_prompt = False
    *lines, lastline = x.strip().split("\n")
    if len(re_param.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative_prompt += ("" if negative_prompt == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    res["Prompt"] = prompt
    res["Negative prompt"] = negative_prompt
    for k, v in re_param.findall(lastline):
        try:
            if v[0] == '"' and v[-1] == '"':
                v = unquote(v)
            m = re_imagesize.match(v)
            if m is not None:
                res[f"{k}-1"] = m.group(1)
                res[f"{k}-2"] = m.group(2)
            else:
                res[k] = v
        except Exception:
            print(f"Error parsing \"{k}: {v}\"")
    return res


def reset() -> None:
    paste_fields.clear()
    registered_param_bindings.clear()
