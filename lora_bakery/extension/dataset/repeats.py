"""Repeats balancer: suggest ``N_name`` per folder so every concept gets about the same steps per epoch.

The rules are the guide's (reference/recipes.md "Steps, repeats, epochs"; lora-baking-guide
"Repetitions and Epochs" and "Recipe"):

- steps per epoch of a folder = repeats × images ("steps" = images seen, not optimizer steps; kohya
  divides by the batch size, which the table shows separately);
- Prodigy: ~300 steps/epoch per concept, ~100 per sub-concept (outfit); AdamW: double;
- multipliers: ip-noise + min-SNR × 3/5, SDXL × 1/2, old (80s/90s) anime or screencaps × 1/3;
- "don't add decimals, always round down": target = floor(base × multipliers), repeats = floor(target / images);
- Prodigy: keep a folder ≤ 500 steps/epoch; main concept total < 3000 (Prodigy) / 6000 (AdamW);
  typical totals 2000–3000 (Prodigy, SD1.5), 1500–2500 (SDXL), 1000–2000 for old anime; AdamW ×2.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from lora_bakery.extension.dataset.safety import Change, Plan
from lora_bakery.trainer.data.folders import concept_folder_name, is_mask_folder, parse_concept_folder

OPTIMIZERS = ("prodigy", "adamw")
FAMILIES = ("sd15", "sdxl")
ROLES = ("concept", "subconcept")


@dataclass(frozen=True)
class Recipe:
    """The inputs of the balancer.

    Args:
        optimizer (`str`, defaults to ``"prodigy"``): ``prodigy`` or ``adamw`` (AdamW doubles every step count).
        family (`str`, defaults to ``"sd15"``): ``sd15`` or ``sdxl`` (SDXL × 1/2).
        ip_noise_min_snr (`bool`, defaults to False): ip_noise_gamma + min_snr_gamma on (× 3/5).
        old_anime (`bool`, defaults to False): 80s/90s anime or low-res screencaps (× 1/3).
        epochs (`int`, defaults to 8).
        concept_steps (`int`, defaults to 300): Prodigy steps per epoch for a concept folder.
        subconcept_steps (`int`, defaults to 100): Prodigy steps per epoch for a sub-concept (outfit) folder.
        batch_size (`int`, defaults to 1): only for the optimizer-steps column.
    """

    optimizer: str = "prodigy"
    family: str = "sd15"
    ip_noise_min_snr: bool = False
    old_anime: bool = False
    epochs: int = 8
    concept_steps: int = 300
    subconcept_steps: int = 100
    batch_size: int = 1

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer: {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.family not in FAMILIES:
            raise ValueError(f"family: {self.family!r} is not one of {', '.join(FAMILIES)}")
        for name in ("epochs", "concept_steps", "subconcept_steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)}")

    @property
    def multiplier(self) -> Fraction:
        """The product of the recipe multipliers (exact fractions, so 300 × 3/5 is exactly 180)."""
        m = Fraction(2 if self.optimizer == "adamw" else 1)
        if self.ip_noise_min_snr:
            m *= Fraction(3, 5)
        if self.family == "sdxl":
            m *= Fraction(1, 2)
        if self.old_anime:
            m *= Fraction(1, 3)
        return m

    def target(self, role: str) -> int:
        """Steps per epoch wanted for a folder of ``role`` (rounded down)."""
        if role not in ROLES:
            raise ValueError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        base = self.concept_steps if role == "concept" else self.subconcept_steps
        return max(1, math.floor(base * self.multiplier))

    def total_range(self) -> tuple[int, int]:
        """Typical total steps for the main concept (guide: Prodigy 2000–3000 SD1.5, 1500–2500 SDXL, old anime 1000–2000; AdamW ×2)."""
        lo, hi = (1000, 2000) if self.old_anime else ((1500, 2500) if self.family == "sdxl" else (2000, 3000))
        k = 2 if self.optimizer == "adamw" else 1
        return lo * k, hi * k

    @property
    def burn_limit(self) -> int:
        """Keep the main concept's total under this (guide: 3000 Prodigy, 6000 AdamW)."""
        return 6000 if self.optimizer == "adamw" else 3000


@dataclass(frozen=True)
class FolderCount:
    """One folder's input: its current name, image count and role."""

    name: str
    images: int
    role: str = "concept"


@dataclass
class BalanceRow:
    """One folder's suggestion."""

    folder: str
    images: int
    role: str
    current_repeats: int | None
    repeats: int
    new_name: str
    steps_per_epoch: int
    total_steps: int
    optimizer_steps_per_epoch: int
    notes: list[str] = field(default_factory=list)


@dataclass
class Balance:
    """The balancer's table and the totals for the shared main concept (the sum of all folders)."""

    recipe: Recipe
    rows: list[BalanceRow]
    main_per_epoch: int
    main_total: int
    notes: list[str]


def balance(folders: list[FolderCount], recipe: Recipe = Recipe()) -> Balance:
    """Suggest repeats per folder.

    Args:
        folders (`list[FolderCount]`): current folder names with image counts and roles.
        recipe (`Recipe`, *optional*): optimizer, family, multipliers, epochs.

    Returns:
        `Balance`: per-folder rows (suggested ``N_name``, steps per epoch, total) and warnings.
    """
    rows = []
    for f in folders:
        current, name = parse_concept_folder(f.name)
        notes = []
        target = recipe.target(f.role)
        if f.images <= 0:
            rows.append(BalanceRow(f.name, 0, f.role, current, current or 1, f.name, 0, 0, 0,
                                   ["no images: left as it is"]))
            continue
        reps = target // f.images
        if reps < 1:
            reps = 1
            notes.append(f"{f.images} images already exceed the {target} steps/epoch target at 1 repeat")
        spe = reps * f.images
        if recipe.optimizer == "prodigy" and spe > 500:
            notes.append(f"{spe} steps/epoch is over 500, the most the guide advises with Prodigy")
        if not name.strip():
            name = "concept"
            notes.append("the folder had no name after the repeat count; named 'concept'")
        rows.append(BalanceRow(f.name, f.images, f.role, current, reps, concept_folder_name(reps, name), spe,
                               spe * recipe.epochs, math.ceil(spe / recipe.batch_size), notes))
    per_epoch = sum(r.steps_per_epoch for r in rows)
    total = per_epoch * recipe.epochs
    notes = []
    lo, hi = recipe.total_range()
    if total > recipe.burn_limit:
        notes.append(f"the main concept (all folders together) gets {total} steps, over the ~{recipe.burn_limit} where "
                     f"it starts to burn with {recipe.optimizer}; lower repeats or split the character tag")
    elif total < lo:
        notes.append(f"{total} total steps is below the usual {lo}–{hi}; add images, repeats or epochs")
    names = [r.new_name for r in rows]
    for n in {n for n in names if names.count(n) > 1}:
        notes.append(f"two folders would both be named '{n}'")
    return Balance(recipe, rows, per_epoch, total, notes)


#: A folder stepping aside during a chain of renames (``1_a → 3_a`` while ``3_a → 6_a``).
TEMP_PREFIX = ".bakery-tmp-"


def plan_renames(result: Balance) -> Plan:
    """Folder renames for the suggestion (undoable through :func:`~lora_bakery.extension.dataset.safety.undo`).

    A folder whose current name is another folder's new name first steps aside to a temporary name
    (``1_a → 3_a`` while ``3_a → 6_a``), so no rename ever lands on an existing folder. A folder whose
    suggestion is the name of a folder that keeps its name, or that another folder would also get, is
    skipped with the reason; the other renames still happen.
    """
    plan = Plan("repeats")
    changing = [r for r in result.rows if r.new_name != r.folder]
    staying = {r.folder.lower() for r in result.rows if r.new_name == r.folder}
    new_names = [r.new_name for r in changing]
    for r in changing:
        if new_names.count(r.new_name) > 1:
            plan.skipped.append((r.folder, f"another folder would also become '{r.new_name}'"))
        elif r.new_name.lower() in staying:
            plan.skipped.append((r.folder, f"'{r.new_name}' is another folder, which keeps its name; merge or "
                                           "rename them by hand"))
    changing = [r for r in changing if new_names.count(r.new_name) == 1 and r.new_name.lower() not in staying]
    targets = {r.new_name for r in changing}
    clash = [r for r in changing if r.folder in targets]  # in another folder's way: step aside first
    clash_ids = {id(r) for r in clash}
    for r in clash:
        plan.changes.append(Change(r.folder, "rename", new_path=f"{TEMP_PREFIX}{r.folder}", description="temporary name"))
    for r in changing:
        src = f"{TEMP_PREFIX}{r.folder}" if id(r) in clash_ids else r.folder
        plan.changes.append(Change(src, "rename", new_path=r.new_name,
                                   description=f"{r.repeats} repeats × {r.images} images = {r.steps_per_epoch} steps/epoch"))
    return plan


def follow_masks(plan: Plan, root: str | os.PathLike) -> Plan:
    """Rename ``masks/<folder>`` along with each renamed concept folder, so per-concept masks keep matching.

    A mask folder whose new name is already taken is left as it is, with a note in ``plan.skipped``
    (the scan then lists its masks as orphans until it is renamed by hand).
    """
    base = Path(root)
    tops = sorted(e.name for e in os.scandir(base) if e.is_dir() and is_mask_folder(e.name))
    renamed = {c.path for c in plan.changes}
    extra: list[Change] = []
    for top in tops:
        steps = [c for c in plan.changes if c.kind == "rename" and (base / top / c.path.removeprefix(TEMP_PREFIX)).is_dir()]
        final = [c for c in steps if not c.new_path.startswith(TEMP_PREFIX)]  # type: ignore[union-attr]
        blocked = [c for c in final if (base / top / c.new_path).exists() and c.new_path not in renamed]  # type: ignore[operator]
        if blocked:
            plan.skipped += [(f"{top}/{c.path.removeprefix(TEMP_PREFIX)}", f"{top}/{c.new_path} already exists; "
                              "rename the mask folder by hand") for c in blocked]
            continue
        extra += [Change(f"{top}/{c.path}", "rename", new_path=f"{top}/{c.new_path}",
                         description="its masks follow the concept folder") for c in steps]
    plan.changes += extra
    return plan


def folder_counts(result, roles: dict[str, str] | None = None) -> list[FolderCount]:
    """:class:`FolderCount` for every sub-folder of a scan (usable images only).

    Args:
        result (`ScanResult`): from :func:`~lora_bakery.extension.dataset.scan.scan`.
        roles (`dict[str, str]`, *optional*): folder name → ``concept`` / ``subconcept`` (default ``concept``).
    """
    roles = roles or {}
    return [FolderCount(f.path, sum(1 for im in f.images if im.usable), roles.get(f.path, "concept"))
            for f in result.folders if f.path]
