"""``RegSettings``: every option of a reg-image run, validated once, the same for UI, CLI and API.

The UI, ``bakery reg`` and ``POST /bakery/v1/reg/...`` all build one of these from field names
(:meth:`RegSettings.from_dict`), so an unknown or bad value fails with a message naming the field
instead of falling back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lora_bakery.extension.reg.prompts import as_patterns

MODES = ("captions", "dreambooth")
SIZE_MODES = ("bucket", "fixed")


class RegSettingsError(ValueError):
    """A bad option; the message names the field and says what is allowed."""


@dataclass
class RegSettings:
    """How reg images are made.

    Args:
        mode (`str`, defaults to ``"captions"``): ``"captions"`` (KNXO: one prompt per training
            caption) or ``"dreambooth"`` (the class prompt, as many images as training images).
        remove (`list[str]`): triggers and un-regulated tags removed from captions (tags or
            ``*``/``re:`` patterns).
        class_prompt (`str`): Dreambooth class (``1girl``); empty means the class part of each
            concept folder's name (``10_SailorMoon_1girl`` → ``1girl``).
        prefix (`str`) / suffix (`str`): prompt-only tags around the caption.
        negative_prompt (`str`): the negative prompt of every image.
        images_per_caption (`int`, defaults to 1): N images per caption (``name``, ``name_reg1``…).
        size_mode (`str`, defaults to ``"bucket"``): the source image's kohya bucket at
            ``resolution`` (aspect kept), or ``"fixed"`` ``width`` × ``height``.
        resolution (`int`, defaults to 512): bucket resolution (512 SD1.5, 1024 SDXL).
        min_bucket (`int`, *optional*) / max_bucket (`int`, *optional*): kohya's smallest and largest
            bucket side; ``None`` means half and twice the resolution (256..1024 at 512, 512..2048 at 1024).
        bucket_step (`int`, defaults to 64): kohya's ``bucket_reso_steps``.
        width (`int`) / height (`int`): the fixed size.
        steps (`int`), cfg_scale (`float`), sampler (`str`, *optional*): generation settings;
            ``sampler=None`` is the host's default.
        seed (`int`, defaults to -1): -1 gives each source a random seed; otherwise image ``i`` of
            the plan gets ``seed + i`` (reproducible).
        batch_size (`int`, defaults to 4): same-size images sent to the host together.
        reg_repeats (`int`, *optional*): repeats of every reg folder; ``None`` mirrors the concept's.
        escape_parentheses (`bool`, defaults to False): escape ``(``/``)`` in prompts (A1111 syntax).
    """

    mode: str = "captions"
    remove: list[str] = field(default_factory=list)
    class_prompt: str = ""
    prefix: str = ""
    suffix: str = ""
    negative_prompt: str = ""
    images_per_caption: int = 1
    size_mode: str = "bucket"
    resolution: int = 512
    min_bucket: int | None = None
    max_bucket: int | None = None
    bucket_step: int = 64
    width: int = 512
    height: int = 512
    steps: int = 20
    cfg_scale: float = 7.0
    sampler: str | None = None
    seed: int = -1
    batch_size: int = 4
    reg_repeats: int | None = None
    escape_parentheses: bool = False

    def __post_init__(self) -> None:
        self.remove = as_patterns(self.remove)
        if self.sampler is not None and not str(self.sampler).strip():
            self.sampler = None
        self.validate()

    def validate(self) -> None:
        """Raise :class:`RegSettingsError` naming the first bad field."""
        if self.mode not in MODES:
            raise RegSettingsError(f"mode: must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.size_mode not in SIZE_MODES:
            raise RegSettingsError(f"size_mode: must be one of {', '.join(SIZE_MODES)}, got {self.size_mode!r}")
        positive = {"images_per_caption": self.images_per_caption, "steps": self.steps, "batch_size": self.batch_size,
                    "resolution": self.resolution, "bucket_step": self.bucket_step}
        for name, value in positive.items():
            if int(value) < 1:
                raise RegSettingsError(f"{name}: must be at least 1, got {value}")
        for name in ("width", "height"):
            value = int(getattr(self, name))
            if value < 8 or value % 8:
                raise RegSettingsError(f"{name}: must be a multiple of 8 and at least 8, got {value}")
        if self.size_mode == "bucket" and self.bucket_step % 8:
            raise RegSettingsError(f"bucket_step: must be a multiple of 8, got {self.bucket_step}")
        if self.reg_repeats is not None and int(self.reg_repeats) < 1:
            raise RegSettingsError(f"reg_repeats: must be at least 1 (or empty to mirror the concept), got {self.reg_repeats}")
        if self.cfg_scale < 0:
            raise RegSettingsError(f"cfg_scale: must not be negative, got {self.cfg_scale}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RegSettings:
        """Build from field names (UI, CLI, API, manifest); unknown names are an error.

        Args:
            data (`dict`, *optional*): field → value; ``None`` values mean the default.

        Returns:
            `RegSettings`: validated settings.

        Raises:
            RegSettingsError: an unknown field or a bad value.
        """
        names = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in (data or {}).items():
            if key not in names:
                raise RegSettingsError(f"{key}: unknown reg setting; known: {', '.join(names)}")
            if value is None and key not in _OPTIONAL:
                continue
            kwargs[key] = _coerce(key, value)
        return cls(**kwargs)

    def bucket_range(self) -> tuple[int, int]:
        """(min, max) bucket side: the given ones, else half and twice the resolution (min snapped to the step)."""
        low = self.min_bucket or max(self.bucket_step, self.resolution // 2 // self.bucket_step * self.bucket_step)
        return int(low), int(self.max_bucket or self.resolution * 2)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready field → value (what the manifest records)."""
        return dataclasses.asdict(self)


_OPTIONAL = ("sampler", "reg_repeats", "min_bucket", "max_bucket")
_INTS = {"images_per_caption", "resolution", "min_bucket", "max_bucket", "bucket_step", "width", "height", "steps",
         "seed", "batch_size", "reg_repeats"}


def _coerce(key: str, value: Any) -> Any:
    """UI numbers arrive as floats and CLI/API values as strings: convert by field, naming it on failure."""
    try:
        if key in _INTS:
            if value is None or value == "":
                return None if key in _OPTIONAL else value
            number = float(value)
            if number != int(number):
                raise ValueError
            return int(number)
        if key == "cfg_scale":
            return float(value)
        if key == "escape_parentheses":
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
    except (TypeError, ValueError):
        raise RegSettingsError(f"{key}: expected a whole number, got {value!r}" if key in _INTS
                               else f"{key}: expected a number, got {value!r}") from None
    return value
