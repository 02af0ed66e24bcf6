"""Reg images: regularisation images from the dataset's own captions, made with the host's model.

Pure planning first, generation second, review last — the same for the Reg images tab,
``bakery reg`` and ``/bakery/v1/reg``:

- :mod:`.prompts`: caption → prompt (triggers and un-regulated tags removed), trigger suggestions.
- :mod:`.settings`: :class:`RegSettings`, every option, validated by field name.
- :mod:`.plan`: :func:`plan_reg` — items (source, prompt, bucket size, seed, ``reg/N_name/`` path), skipped + why.
- :mod:`.generate`: :func:`generate_reg` — batches of same-size images through ``Host.generate``,
  atomic writes, manifest after every batch, resume, interrupt.
- :mod:`.review`: :func:`reroll` (new seeds) and :func:`delete`.
- :mod:`.manifest`, :mod:`.files`: ``manifest.json`` and atomic files.
- :mod:`.report`: plans and runs as table rows / JSON for the UI, CLI and API.
"""

from lora_bakery.extension.reg.generate import RegRun, generate_reg
from lora_bakery.extension.reg.plan import RegItem, RegPlan, default_output_dir, plan_reg
from lora_bakery.extension.reg.prompts import make_prompt, suggest_triggers
from lora_bakery.extension.reg.review import delete, list_images, reroll
from lora_bakery.extension.reg.settings import RegSettings, RegSettingsError

__all__ = [
    "RegItem", "RegPlan", "RegRun", "RegSettings", "RegSettingsError", "default_output_dir", "delete",
    "generate_reg", "list_images", "make_prompt", "plan_reg", "reroll", "suggest_triggers",
]
