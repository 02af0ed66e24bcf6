"""``LecoConfig``: one dataclass tree for the LECO sub-tab, ``bakery leco CONFIG.toml`` and the metadata.

Field names follow LECO's ``prompts.yaml`` / ``config.yaml`` (reference/leco-lbw.md §A4) so a user
coming from p1atdev/LECO or the concept-sliders scripts finds what they know: one ``[[prompts]]``
table per entry (``target``, ``positive``, ``unconditional``, ``neutral``, ``action``,
``guidance_scale``, ``resolution``, ``dynamic_resolution``, ``batch_size``), plus ``attributes``
(sliders' ``--attributes``), ``[[anchors]]``, ``[network]``, ``[training]``, ``[saving]`` and
``[preview]``. Validation is the config tree's own (:class:`~lora_bakery.trainer.config.fields.Section`):
a bad value raises :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ConfigError, toml_io
from ..config.fields import Section, opt

LECO_CONFIG_VERSION = 1
ACTIONS = ("enhance", "erase")
MODULE_SETS = ("full", "xattn", "noxattn", "selfattn")
OPTIMIZERS = ("adamw", "prodigy", "lion")
PRECISIONS = ("bf16", "fp32", "fp16")
SAVE_PRECISIONS = ("fp16", "bf16", "fp32")
FP16_REFUSED = (
    "fp16 training is refused for LECO: its losses turn NaN and the slider comes out unusable "
    "(LECO README: 'unstable and not recommended'; the LoRA baking guide: 'FP16 causes NAN loss "
    "errors'). Choose bf16 if the GPU supports it, else fp32. Files are still saved in fp16 "
    "(saving.precision) for compatibility."
)


@dataclass
class PromptEntry(Section):
    """One slider/erase entry (LECO ``prompts.yaml``); missing prompts default as LECO does (§A1.8)."""

    target: str = opt("", "The concept the LoRA acts on (e.g. 'skirt', '1girl').", group="Prompts")
    positive: str | None = opt(
        None, "The concept's +1 extreme (e.g. 'long_skirt'); unset = the target.", group="Prompts"
    )
    unconditional: str = opt(
        "",
        "The opposite extreme, 'negative' in ai-toolkit (e.g. 'microskirt'); '' = no concept.",
        group="Prompts",
    )
    neutral: str | None = opt(
        None, "What +0 looks like, usually the target; unset = the unconditional prompt.", group="Prompts"
    )
    action: str = opt(
        "enhance",
        "enhance: +1 moves toward the positive prompt; erase: +1 moves away from it (ESD).",
        group="Prompts",
        choices=ACTIONS,
    )
    guidance_scale: float = opt(
        1.0, "Strength g of the direction g*(e(positive) - e(unconditional)).", group="Prompts", min=0.0
    )
    resolution: int = opt(512, "Latent size in pixels (512 SD1.5, 768 SD2, 1024 SDXL).", group="Prompts", min=64)
    dynamic_resolution: bool = opt(
        False, "Random bucket each step: sides multiples of 64 from resolution/2 up to resolution-64.", group="Prompts"
    )
    batch_size: int = opt(1, "Latents per step for this entry.", group="Prompts", min=1)
    weight: float = opt(1.0, "Weight of this entry's loss.", group="Prompts", min=0.0)

    def check(self) -> None:
        if not self.target.strip():
            raise ConfigError("target", "is empty: name the concept the slider changes (e.g. 'skirt')")
        if self.resolution % 64:
            raise ConfigError("resolution", f"must be a multiple of 64, got {self.resolution}")
        if self.dynamic_resolution and self.resolution < 192:
            raise ConfigError("dynamic_resolution", "needs resolution 192 or more (buckets run res/2 .. res-64)")
        if self.resolved()[1].strip() == self.unconditional.strip():
            raise ConfigError(
                "positive",
                f"is the same as the unconditional/negative prompt ({self.unconditional!r}): the slider "
                "direction e(positive) - e(negative) is zero, there is nothing to learn; make the two "
                "extremes differ (e.g. positive 'long_skirt', negative 'microskirt')",
            )

    def resolved(self) -> tuple[str, str, str, str]:
        """``(target, positive, neutral, unconditional)`` with LECO's defaults filled in."""
        positive = self.positive if self.positive is not None else self.target
        neutral = self.neutral if self.neutral is not None else self.unconditional
        return self.target, positive, neutral, self.unconditional


@dataclass
class AnchorEntry(Section):
    """A prompt the slider must leave alone: its adapted prediction is trained to stay the base one."""

    prompt: str = opt("", "Prompt to preserve (e.g. '1girl, face').", group="Anchors")
    weight: float = opt(1.0, "Weight of its anchor loss.", group="Anchors", min=0.0)

    def check(self) -> None:
        if not self.prompt.strip():
            raise ConfigError("prompt", "is empty: give the prompt the slider must not change, or remove the anchor")


@dataclass
class LecoNetwork(Section):
    """The slider LoRA: rank, alpha and which U-Net layers get one (§A2)."""

    dim: int = opt(4, "Rank (LECO default 4; ai-toolkit sliders 8).", group="Network", min=1)
    alpha: float = opt(1.0, "Alpha; scale = alpha/dim (LECO 1; ai-toolkit 4 for dim 8).", group="Network", min=0.0)
    modules: str = opt(
        "full",
        "full: every attention/feed-forward layer; xattn: cross-attention only; noxattn: all but "
        "cross-attention; selfattn: self-attention only.",
        group="Network",
        choices=MODULE_SETS,
    )
    conv_dim: int | None = opt(
        None, "Also adapt ResNet/down/upsample convs at this rank (LECO 'c3lier'); unset = none.", group="Network", min=1
    )
    conv_alpha: float | None = opt(None, "Alpha of the convs; unset = 1.", group="Network", min=0.0)


@dataclass
class LecoTraining(Section):
    """Steps, optimizer, precision and the LECO-specific knobs."""

    steps: int = opt(500, "Optimizer steps (LECO/ai-toolkit: 500; the guide: sliders burn well before).", group="Training", min=1)
    lr: float = opt(1e-4, "Learning rate (1e-4; the guide found 2e-4 too high). Prodigy: 1.", group="Training", min=0.0)
    optimizer: str = opt("adamw", "Optimizer.", group="Training", choices=OPTIMIZERS)
    optimizer_args: list[str] = opt([], "Extra optimizer arguments as key=value.", group="Training")
    scheduler: str = opt("constant", "Learning-rate schedule (LECO: constant).", group="Training")
    precision: str = opt(
        "bf16", "Autocast dtype: bf16 or fp32 (fp16 is refused: NaN losses).", group="Training", choices=PRECISIONS
    )
    max_denoising_steps: int = opt(
        50, "DDIM steps of the partial denoising; k is drawn from 1..this-1 each step.", group="Training", min=2
    )
    latent_cfg: float = opt(3.0, "CFG scale of the partial denoising (LECO: 3).", group="Training", min=0.0)
    bidirectional: bool = opt(
        False, "Train +1 and -1 in one step (ai-toolkit slider) instead of +1 only (LECO).", group="Training"
    )
    anchor_weight: float = opt(1.0, "Overall weight of the anchor losses.", group="Training", min=0.0)
    seed: int = opt(42, "Random seed (latents, timesteps, entry order, initial weights).", group="Training", min=0)

    def check(self) -> None:
        if self.precision == "fp16":
            raise ConfigError("precision", FP16_REFUSED)


@dataclass
class LecoSaving(Section):
    """Where and how often files are written."""

    output_dir: str = opt("", "Folder for the slider files.", group="Saving")
    output_name: str = opt("leco_slider", "File name (without .safetensors).", group="Saving")
    save_every: int = opt(100, "Write NAME-STEP.safetensors every this many steps (0 = only the end).", group="Saving", min=0)
    precision: str = opt("fp16", "dtype of the saved files (fp16 for compatibility).", group="Saving", choices=SAVE_PRECISIONS)
    overwrite: bool = opt(False, "Replace existing files of the same name.", group="Saving")
    save_state: bool = opt(
        False, "Also write the resumable NAME-state folder at every save (an interrupt always writes it).",
        group="Saving",
    )
    resume: str | None = opt(None, "NAME-state folder of an earlier run to continue.", group="Saving")
    comment: str = opt("", "Extra text for ss_training_comment (the prompts are always written).", group="Saving")

    def check(self) -> None:
        bad = set(self.output_name) & set('\\/:*?"<>|')
        if not self.output_name.strip() or bad:
            raise ConfigError("output_name", f"{self.output_name!r} is not a usable file name")


@dataclass
class LecoPreview(Section):
    """The preview grid rendered at every save through the host (the guide's -2 .. 2 sweep)."""

    prompt: str = opt("", "Preview prompt; '' = the first entry's target.", group="Preview")
    negative_prompt: str = opt("", "Negative prompt of the preview.", group="Preview")
    multipliers: list[float] = opt([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], "Slider weights, one image each.", group="Preview")
    seed: int = opt(1234, "Seed (the same for every weight).", group="Preview", min=0)
    width: int = opt(512, "Width.", group="Preview", min=64)
    height: int = opt(512, "Height.", group="Preview", min=64)
    steps: int = opt(20, "Sampling steps.", group="Preview", min=1)
    cfg_scale: float = opt(7.0, "CFG scale.", group="Preview", min=0.0)
    enabled: bool = opt(True, "Render previews at each save.", group="Preview")

    def check(self) -> None:
        if self.enabled and not self.multipliers:
            raise ConfigError("multipliers", "give at least one weight, or disable previews")


@dataclass
class LecoConfig(Section):
    """Everything one LECO run needs.

    Build it from a dict/TOML (:meth:`from_dict`, :meth:`from_toml`, :meth:`load`) or from the UI;
    every route validates, and :meth:`expanded_prompts` gives the entries the loop trains on.
    """

    version: int = opt(LECO_CONFIG_VERSION, "Config file format version.", min=1)
    prompts: list[PromptEntry] = opt([], "Prompt entries; each step trains one, drawn at random.")
    attributes: list[str] = opt(
        [], "Attributes to disentangle (sliders' --attributes): each entry is trained once per attribute, "
        "prefixed to all four prompts.", group="Prompts",
    )
    anchors: list[AnchorEntry] = opt([], "Prompts the slider must not change.")
    network: LecoNetwork = opt(LecoNetwork, "The slider LoRA.")
    training: LecoTraining = opt(LecoTraining, "Training loop.")
    saving: LecoSaving = opt(LecoSaving, "Output files.")
    preview: LecoPreview = opt(LecoPreview, "Preview grid.")

    def check(self) -> None:
        if self.version > LECO_CONFIG_VERSION:
            raise ConfigError(
                "version", f"this file is version {self.version}, newer than this LoRA Bakery understands ({LECO_CONFIG_VERSION})"
            )
        for i, attribute in enumerate(self.attributes):
            if not attribute.strip():
                raise ConfigError(f"attributes[{i}]", "is empty")

    def check_ready(self) -> None:
        """Rules for a config about to train (the UI builds configs up gradually).

        Raises:
            ConfigError: no prompt entry, or no output folder.
        """
        if not self.prompts:
            raise ConfigError("prompts", "no prompt entry: add at least one target with its positive/negative prompts")
        if not self.saving.output_dir:
            raise ConfigError("saving.output_dir", "choose a folder for the slider files")

    def expanded_prompts(self) -> list[PromptEntry]:
        """The entries trained on: each entry once per attribute (``"<attr> <prompt>"``, as the sliders
        scripts build them), or the entries themselves when there are no attributes."""
        if not self.attributes:
            return list(self.prompts)
        out = []
        for entry in self.prompts:
            target, positive, neutral, unconditional = entry.resolved()
            for attribute in self.attributes:
                a = attribute.strip()
                out.append(dataclasses.replace(
                    entry,
                    target=f"{a} {target}".strip(),
                    positive=f"{a} {positive}".strip(),
                    neutral=f"{a} {neutral}".strip(),
                    unconditional=f"{a} {unconditional}".strip(),
                ))
        return out

    def preview_prompt(self) -> str:
        """The preview prompt, or the first entry's target."""
        if self.preview.prompt.strip():
            return self.preview.prompt
        return self.prompts[0].target if self.prompts else ""

    def warnings(self) -> list[str]:
        """Legal but probably unintended settings, as sentences for the log and the UI."""
        out = []
        t = self.training
        if t.optimizer == "prodigy" and t.lr <= 0.1:
            out.append(f"training.lr is {t.lr:g}: Prodigy expects about 1.")
        if t.optimizer != "prodigy" and t.lr > 5e-4:
            out.append(f"training.lr is {t.lr:g}: sliders burn fast; the guide found even 2e-4 too high (use 1e-4).")
        if self.network.alpha > self.network.dim:
            out.append(f"network.alpha {self.network.alpha:g} is above dim {self.network.dim}: the effective scale is above 1.")
        if self.saving.save_every and self.saving.save_every > t.steps:
            out.append("saving.save_every is longer than the run: only the final file is written.")
        return out

    def summary(self) -> str:
        """The prompts as one line each, for ``ss_training_comment`` and the log."""
        lines = []
        for entry in self.prompts:
            target, positive, neutral, unconditional = entry.resolved()
            lines.append(
                f"LECO {entry.action} g={entry.guidance_scale:g}: target={target!r} positive={positive!r} "
                f"negative={unconditional!r} neutral={neutral!r}"
            )
        if self.attributes:
            lines.append("attributes: " + ", ".join(self.attributes))
        for anchor in self.anchors:
            lines.append(f"anchor {anchor.prompt!r} w={anchor.weight:g}")
        if self.training.bidirectional:
            lines.append("bidirectional (+1/-1)")
        if self.saving.comment:
            lines.append(self.saving.comment)
        return "\n".join(lines)

    # ----------------------------------------------------------------- TOML

    def to_toml(self) -> str:
        """TOML text that :meth:`from_toml` (and ``bakery leco``) read back unchanged."""
        return toml_io.dumps(self.to_dict(), header="LoRA Bakery LECO config. Run with: bakery leco THIS_FILE.toml")

    @classmethod
    def from_toml(cls, text: str, source: str = "") -> LecoConfig:
        return cls.from_dict(toml_io.loads(text, source))

    @classmethod
    def load(cls, path: str | os.PathLike) -> LecoConfig:
        """Read a config file; errors name the file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError("", f"{path} is not UTF-8 text") from None
        return cls.from_toml(text, str(path))

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_toml` atomically."""
        return toml_io.write_atomic(path, self.to_toml())


#: UI presets: name -> config dict fragments (prompts and network), after the guide's examples.
PRESETS: dict[str, dict[str, Any]] = {
    "skirt length (guide)": {
        "prompts": [{
            "target": "skirt",
            "positive": "long_skirt",
            "unconditional": "microskirt, lowleg_skirt, underbutt, thighs, panties, pantyshot, underwear",
            "neutral": "skirt",
            "action": "enhance",
            "guidance_scale": 1.0,
        }],
        "network": {"dim": 8, "alpha": 4.0},
        "preview": {"prompt": "1girl, skirt, standing"},
    },
    "age (sliders)": {
        "prompts": [{
            "target": "person",
            "positive": "person, very old",
            "unconditional": "person, very young",
            "neutral": "person",
            "action": "enhance",
            "guidance_scale": 4.0,
        }],
        "attributes": ["male", "female"],
    },
    "detail (sliders)": {
        "prompts": [{
            "target": "a picture",
            "positive": "a picture, high detail, intricate, sharp focus",
            "unconditional": "a picture, low detail, blurry, simple",
            "neutral": "a picture",
            "action": "enhance",
            "guidance_scale": 2.0,
        }],
    },
    "erase a concept (ESD)": {
        "prompts": [{"target": "van gogh", "action": "erase", "guidance_scale": 1.0}],
    },
}


def preset(name: str) -> dict[str, Any]:
    """A copy of preset ``name`` (``ValueError`` listing the known ones)."""
    import copy

    if name not in PRESETS:
        raise ValueError(f"unknown LECO preset {name!r}; known: {', '.join(PRESETS)}")
    return copy.deepcopy(PRESETS[name])
