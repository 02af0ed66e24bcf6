"""kohya's sample-prompt syntax: one prompt per line, flags ``--n --w --h --d --l --s --ss``.

Source: SD:library/train_util.py ``line_to_prompt_dict`` — the line is split on ``" --"``, the first
part is the prompt and each other part is one flag (``n`` negative, ``w``/``h`` size, ``d`` seed,
``l`` CFG scale, ``s`` steps 1..1000, ``ss`` sampler). Lines starting with ``#`` and empty lines
are skipped. Unknown flags are kept in the prompt text by kohya; here they raise, naming the line,
because a typo silently changing the prompt is worse.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from .types import SamplePrompt

_FLAGS = {
    "n": ("negative_prompt", str),
    "w": ("width", int),
    "h": ("height", int),
    "d": ("seed", int),
    "l": ("cfg_scale", float),
    "s": ("steps", int),
    "ss": ("sampler", str),
}


def parse_prompt_line(line: str, defaults: SamplePrompt) -> SamplePrompt:
    """One prompt line → :class:`SamplePrompt`, missing flags taken from ``defaults``.

    Args:
        line (`str`): e.g. ``"sks dog, park --n blurry --w 512 --h 768 --d 42 --l 7 --s 28"``.
        defaults (`SamplePrompt`): values for flags the line does not give (its ``prompt`` is ignored).

    Returns:
        `SamplePrompt`

    Raises:
        ValueError: an unknown flag or a value that does not parse (the message quotes the line).
    """
    parts = line.strip().split(" --")
    values = {
        "prompt": parts[0].strip(),
        "negative_prompt": defaults.negative_prompt,
        "seed": defaults.seed,
        "width": defaults.width,
        "height": defaults.height,
        "steps": defaults.steps,
        "cfg_scale": defaults.cfg_scale,
        "sampler": defaults.sampler,
    }
    for part in parts[1:]:
        match = re.match(r"^(ss|[nwhdls])(?:\s+(.*))?$", part.strip(), re.S)
        if not match:
            raise ValueError(f"sample prompt {line.strip()!r}: unknown flag --{part.strip().split(' ')[0]} (use --n --w --h --d --l --s --ss)")
        flag, raw = match.group(1), (match.group(2) or "").strip()
        name, kind = _FLAGS[flag]
        try:
            value = kind(raw) if kind is not str else raw
        except ValueError:
            raise ValueError(f"sample prompt {line.strip()!r}: --{flag} needs a number, got {raw!r}") from None
        values[name] = value
    if not 1 <= values["steps"] <= 1000:
        raise ValueError(f"sample prompt {line.strip()!r}: --s must be between 1 and 1000")
    for side in ("width", "height"):
        values[side] = max(64, values[side] // 8 * 8)  # kohya rounds down to a multiple of 8
    return SamplePrompt(**values)


def parse_prompts(lines: Iterable[str], defaults: SamplePrompt) -> list[SamplePrompt]:
    """Every prompt of a kohya prompt file's lines (comments and blanks skipped)."""
    out = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        out.append(parse_prompt_line(text, defaults))
    return out


def load_sample_prompts(prompts: list[str], prompts_file: str | None, defaults: SamplePrompt) -> list[SamplePrompt]:
    """The config's prompts followed by those of ``prompts_file`` (a ``.txt`` in kohya syntax).

    Raises:
        ValueError: the file is missing or not ``.txt``, or a line does not parse.
    """
    lines = list(prompts)
    if prompts_file:
        if not os.path.isfile(prompts_file):
            raise ValueError(f"sampling.prompts_file {prompts_file} does not exist")
        if not prompts_file.lower().endswith(".txt"):
            raise ValueError(f"sampling.prompts_file {prompts_file}: only .txt prompt files (kohya syntax) are read")
        with open(prompts_file, encoding="utf-8") as handle:
            lines.extend(handle.read().splitlines())
    return parse_prompts(lines, defaults)
