"""Make the planned reg images through ``Host.generate``: batched by size, resumable, interruptible.

Same-size images go to the host together (``batch_size`` requests per ``generate`` call: one
pipeline set-up and one progress update per batch); each image is one request with its own seed,
so every seed is known before it is generated and recorded after. After every batch the images
and captions are written atomically and the manifest is saved, so an interrupt, a crash or a
closed browser loses at most the batch in flight, and :func:`generate_reg` with
``existing="resume"`` picks up from there, keeping every valid image.

An image the host was still sampling when Interrupt was pressed comes back half-denoised (A1111
and diffusers both return it); :class:`BatchProgress` notes when the interrupt was first seen, and
such images are discarded, never saved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_bakery.extension.host.base import GenerationRequest, Host, NullProgress, Progress
from lora_bakery.extension.reg import files
from lora_bakery.extension.reg.manifest import IDENTITY, Manifest
from lora_bakery.extension.reg.plan import RegItem, RegPlan

EXISTING = ("resume", "overwrite", "error")


@dataclass
class RegRun:
    """What a run did.

    Attributes:
        output (`Path`): the reg folder.
        generated (`list[str]`): images made now (paths relative to ``output``).
        kept (`list[str]`): valid images from an earlier run, kept (resume).
        left_deleted (`list[str]`): images the user deleted, not made again.
        skipped (`list[tuple[str, str]]`): sources without a reg image, with the reason.
        discarded (`int`): half-finished images thrown away at an interrupt.
        interrupted (`bool`): stopped before the end; run again with resume to continue.
        pending (`int`): images still to make.
        seconds (`float`) / host_seconds (`float`): wall time, and the part spent inside ``Host.generate``.
        notes (`list[str]`): things to tell the user.
    """

    output: Path
    generated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    left_deleted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    discarded: int = 0
    interrupted: bool = False
    pending: int = 0
    seconds: float = 0.0
    host_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs, the CLI and the UI."""
        head = "Interrupted" if self.interrupted else "Done"
        text = (f"{head}: {len(self.generated)} reg image(s) generated, {len(self.kept)} kept from before, "
                f"{len(self.skipped)} source image(s) skipped")
        if self.left_deleted:
            text += f", {len(self.left_deleted)} deleted earlier not remade"
        if self.interrupted:
            text += f"; {self.pending} still to make (run again with resume to continue)"
        return text + f" in {self.seconds:.1f} s → {self.output}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready result (API, CLI ``--json``, job results)."""
        return {"output": str(self.output), "generated": self.generated, "kept": self.kept,
                "left_deleted": self.left_deleted, "skipped": [{"source": s, "reason": r} for s, r in self.skipped],
                "discarded": self.discarded, "interrupted": self.interrupted, "pending": self.pending,
                "seconds": round(self.seconds, 3), "host_seconds": round(self.host_seconds, 3),
                "notes": self.notes, "summary": self.summary()}


class BatchProgress:
    """The Progress handed to ``Host.generate`` for one batch.

    Previews and the interrupt flag go to the run's progress; the host's own ``begin``/``step``
    counts (sampling steps for diffusers, requests for A1111) are not the run's units, so the run
    counts images itself. ``cut`` is the number of images the host had finished (previewed) when
    an interrupt was first seen: images from there on may be half-denoised.
    """

    def __init__(self, outer: Progress) -> None:
        self.outer = outer
        self.previews = 0
        self.cut: int | None = None

    def _check(self) -> bool:
        if self.cut is not None:
            return True
        if self.outer.interrupted:
            self.cut = self.previews
            return True
        return False

    def begin(self, total: int, text: str = "") -> None:
        self._check()

    def step(self, n: int = 1, text: str | None = None) -> None:
        self._check()

    def preview(self, image: Any) -> None:
        if not self._check():
            self.previews += 1
        self.outer.preview(image)

    @property
    def interrupted(self) -> bool:
        return self._check()

    def end(self) -> None:
        pass


def model_info(host: Host) -> dict[str, Any]:
    """Name and hash of the host's model for the manifest (no full-file hashing here: that reads GBs).

    Returns:
        `dict`: ``name``, ``architecture``, ``hash`` (sha256[:10] when the host knows it, else
        A1111's legacy 8-hex hash), ``sha256`` when known.
    """
    parts = host.model()
    digest = parts.checkpoint_hash
    legacy = parts.legacy_hash
    if not digest and not legacy and parts.checkpoint_path and Path(parts.checkpoint_path).is_file():
        from lora_bakery.trainer.saving.hashes import model_hash

        legacy = model_hash(parts.checkpoint_path)
    return {"name": parts.checkpoint_name, "architecture": parts.architecture,
            "hash": digest[:10] if digest else (legacy or ""), "sha256": digest or None}


def wanted_entry(item: RegItem) -> dict[str, Any]:
    """The manifest fields that a plan item decides (before generation)."""
    return {"source": item.source_rel, "original_caption": item.original, "caption": item.caption,
            "prompt": item.prompt, "negative_prompt": item.negative_prompt, "width": item.width,
            "height": item.height}


def request_for(item: RegItem, plan: RegPlan, seed: int | None = None) -> GenerationRequest:
    """The host request of one plan item (one image, no LoRA)."""
    s = plan.settings
    return GenerationRequest(prompt=item.prompt, negative_prompt=item.negative_prompt,
                             seed=item.seed if seed is None else seed, width=item.width, height=item.height,
                             steps=s.steps, cfg_scale=s.cfg_scale, sampler=s.sampler, batch_size=1)


def save_generated(manifest: Manifest, out_rel: str, base: dict[str, Any], gen: Any, model: dict[str, Any],
                   extra: dict[str, Any] | None = None) -> None:
    """Write one generated image and its caption, and record it in the manifest (not saved yet)."""
    entry = {**base, "seed": int(gen.seed), "width": int(gen.image.width), "height": int(gen.image.height),
             "sampler": gen.sampler, "steps": gen.steps, "cfg_scale": gen.cfg_scale, "model": model.get("name", ""),
             "model_hash": model.get("hash", ""), "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **(extra or {})}
    path = manifest.root / out_rel
    files.write_image(path, gen.image, gen.infotext, entry)
    files.write_caption(path.with_suffix(".txt"), entry["caption"])
    manifest.images[out_rel] = entry
    manifest.deleted.pop(out_rel, None)


def _existing(plan: RegPlan, manifest: Manifest, existing: str, run: RegRun) -> list[RegItem]:
    """Decide per item: keep (valid, same prompt/size), leave deleted, or make. Returns the items to make."""
    pending: list[RegItem] = []
    present = [i.out_rel for i in plan.items if (plan.output / i.out_rel).exists()]
    if existing == "error" and (present or manifest.images):
        raise ValueError(f"{plan.output} already holds {max(len(present), len(manifest.images))} reg image(s); "
                         "resume to keep them and make the rest, or overwrite to make all again")
    for item in plan.items:
        wanted = wanted_entry(item)
        if existing == "overwrite":
            manifest.deleted.pop(item.out_rel, None)
            pending.append(item)
            continue
        if item.out_rel in manifest.deleted and item.out_rel not in manifest.images:
            run.left_deleted.append(item.out_rel)
            continue
        path = plan.output / item.out_rel
        valid, record = files.image_state(path, (item.width, item.height))
        if valid and not manifest.matches(item.out_rel, wanted) and record is not None:
            if all(record.get(k) == wanted.get(k) for k in IDENTITY):
                manifest.images[item.out_rel] = record  # written before the manifest was: recover it
        if valid and manifest.matches(item.out_rel, wanted):
            caption = path.with_suffix(".txt")
            if not caption.is_file() or caption.read_text(encoding="utf-8").strip() != item.caption:
                files.write_caption(caption, item.caption)
            run.kept.append(item.out_rel)
            continue
        pending.append(item)
    return pending


def _batches(items: list[RegItem], size: int) -> list[list[RegItem]]:
    """Same-size items together (in order of first appearance), ``size`` at most per batch."""
    groups: dict[tuple[int, int], list[RegItem]] = {}
    for item in items:
        groups.setdefault((item.width, item.height), []).append(item)
    return [group[i : i + size] for group in groups.values() for i in range(0, len(group), size)]


def generate_reg(host: Host, plan: RegPlan, progress: Progress | None = None, *, existing: str = "resume") -> RegRun:
    """Generate the planned reg images with the host's model (no LoRA) and write the reg folder.

    Args:
        host (`Host`): A1111Host (``processing.process_images``) or DiffusersHost.
        plan (`RegPlan`): from :func:`~.plan.plan_reg`.
        progress (`Progress`, *optional*): one step per image; interrupt stops after saving what is whole.
        existing (`str`, defaults to ``"resume"``): images already in the reg folder are kept when
            valid and still matching the plan (``"resume"``), all made again (``"overwrite"``), or
            refused (``"error"``).

    Returns:
        `RegRun`: what was generated, kept, skipped; ``interrupted`` when stopped early.

    Raises:
        ValueError: the output folder cannot be written, or holds images with ``existing="error"``.
        HostError: no model, or the host refused.
    """
    if existing not in EXISTING:
        raise ValueError(f"existing: must be one of {', '.join(EXISTING)}, got {existing!r}")
    start = time.perf_counter()
    progress = progress or NullProgress()
    run = RegRun(output=plan.output, skipped=list(plan.skipped))
    files.ensure_writable(plan.output)
    if files.remove_leftovers(plan.output):
        run.notes.append("removed half-written files left by an earlier run")
    manifest = Manifest.load(plan.output)
    run.notes.extend(manifest.notes)
    with host.exclusive():
        model = model_info(host)
        pending = _existing(plan, manifest, existing, run)
        manifest.meta.update({"source": str(plan.source), "settings": plan.settings.to_dict(), "model": model,
                              "skipped": [{"source": s, "reason": r} for s, r in plan.skipped]})
        manifest.save()
        progress.begin(len(pending), "Reg images")
        try:
            _run_batches(host, plan, manifest, pending, progress, model, run)
        finally:
            progress.end()
    run.seconds = time.perf_counter() - start
    return run


def _run_batches(host: Host, plan: RegPlan, manifest: Manifest, pending: list[RegItem], progress: Progress,
                 model: dict[str, Any], run: RegRun) -> None:
    done = 0
    for batch in _batches(pending, plan.settings.batch_size):
        if progress.interrupted:
            run.interrupted = True
            break
        watcher = BatchProgress(progress)
        t0 = time.perf_counter()
        images = host.generate([request_for(item, plan) for item in batch], watcher)
        run.host_seconds += time.perf_counter() - t0
        whole = len(images) if watcher.cut is None else min(watcher.cut, len(images))
        if watcher.cut is None and len(images) < len(batch):
            whole = max(0, len(images) - 1)  # the host stopped by itself: its last image may be partial
        for item, gen in zip(batch[:whole], images[:whole]):
            save_generated(manifest, item.out_rel, wanted_entry(item), gen, model)
            run.generated.append(item.out_rel)
        run.discarded += len(images) - whole
        manifest.save()
        done += whole
        progress.step(whole, f"Reg images {done}/{len(pending)}")
        if whole < len(batch):
            run.interrupted = True
            break
    run.pending = len(pending) - done
