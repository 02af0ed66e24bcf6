"""Reg generation through A1111Host over the fake webui: requests, files, manifest, progress, interrupt, resume, review."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from lora_bakery.extension.host.a1111 import A1111Host, A1111Progress
from lora_bakery.extension.jobs import JobQueue
from lora_bakery.extension.reg import delete, generate_reg, list_images, plan_reg, reroll
from lora_bakery.extension.reg.report import run_generation
from lora_bakery.trainer.tiny import tiny_checkpoint
from tests.fakes.webui import installed_fake_webui

from .helpers import make_training, tiny_settings

SHA = "ab" * 32


@pytest.fixture
def webui(monkeypatch):
    with installed_fake_webui() as fake:
        fake.load(tiny_checkpoint("sd15"), "sd1", sha256=SHA)
        # The fake records a checksum of every weight per call (for LoRA tests): seconds per image
        # on a busy CPU, and nothing the reg tests look at.
        monkeypatch.setattr(fake.processing, "_weights_checksum", lambda sd_model: 0.0)
        yield fake


def _manifest(out):
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def test_a_job_generates_through_process_images(webui, tmp_path):
    root = make_training(tmp_path / "train")
    out = tmp_path / "reg"
    jobs = JobQueue(sink_factory=A1111Progress)
    job = jobs.run("Reg images", run_generation, A1111Host(), str(root), str(out),
                   tiny_settings(sampler="Euler a", prefix="masterpiece").to_dict())
    assert job.status == "done", job.error
    calls = webui.processing.calls
    assert [(c["prompt"], c["width"], c["height"], c["seed"]) for c in calls] == [
        ("masterpiece, 1girl, smile", 64, 64, 100), ("masterpiece, shirt, skirt", 64, 64, 102),
        ("masterpiece, 1girl, red_hair, smile", 32, 96, 101)]  # same-size images together
    assert {(c["negative_prompt"], c["steps"], c["cfg_scale"], c["sampler_name"], c["batch_size"]) for c in calls} == {
        ("lowres", 1, 1.0, "Euler a", 1)}
    assert all(c["queue_lock_held"] and c["loras"] == [] for c in calls)
    state = webui.state
    assert state.begun == ["LoRA Bakery"] and state.current_image is not None  # progress bar + live preview
    assert job.total == 3 and job.current == 3 and job.result["generated"] == ["10_chara/a.png", "3_outfit/e.png",
                                                                              "10_chara/b.png"]
    assert (out / "10_chara/b.txt").read_text(encoding="utf-8") == "1girl, red_hair, smile\n"
    with Image.open(out / "10_chara/b.png") as img:
        assert img.size == (32, 96) and "Seed: 101" in img.text["parameters"]
    data = _manifest(out)
    entry = data["images"]["10_chara/b.png"]
    assert entry["source"] == "10_chara/b.png" and entry["original_caption"].startswith("chara, |||")
    assert (entry["seed"], entry["width"], entry["height"], entry["steps"], entry["cfg_scale"]) == (101, 32, 96, 1, 1.0)
    assert entry["sampler"] == "Euler a" and entry["model"] == "tiny-sd15.safetensors" and entry["model_hash"] == SHA[:10]
    assert data["model"]["sha256"] == SHA and data["settings"]["remove"] == ["chara", "outfit1"]
    assert {s["source"] for s in data["skipped"]} == {"10_chara/c.png", "10_chara/d.png"}
    assert not webui.call_queue.queue_lock.locked()


def test_interrupt_discards_the_image_in_flight_and_resume_finishes(webui, tmp_path, monkeypatch):
    root = make_training(tmp_path / "train")
    out = tmp_path / "reg"
    original = webui.processing.process_images

    def interrupted_during_second(p):  # Interrupt pressed while the 2nd image samples: it comes back partial
        result = original(p)
        if len(webui.processing.calls) == 2:
            webui.state.interrupted = True
        return result

    monkeypatch.setattr(webui.processing, "process_images", interrupted_during_second)
    jobs = JobQueue(sink_factory=A1111Progress)
    job = jobs.run("Reg images", run_generation, A1111Host(), str(root), str(out), tiny_settings().to_dict())
    assert job.status == "interrupted" and job.result["generated"] == ["10_chara/a.png"]
    assert job.result["discarded"] == 1 and job.result["pending"] == 2
    assert not (out / "3_outfit/e.png").exists() and not list(out.rglob("*bakery-tmp*"))
    assert list(_manifest(out)["images"]) == ["10_chara/a.png"]
    before = (out / "10_chara/a.png").read_bytes()

    monkeypatch.setattr(webui.processing, "process_images", original)
    webui.processing.calls.clear()
    plan = plan_reg(root, out, tiny_settings())
    (out / "3_outfit").mkdir(exist_ok=True)
    (out / "3_outfit/.e.png.x.bakery-tmp").write_bytes(b"half")  # a crash's leftover
    run = generate_reg(A1111Host(), plan)
    assert run.kept == ["10_chara/a.png"] and run.generated == ["10_chara/b.png", "3_outfit/e.png"]
    assert [c["seed"] for c in webui.processing.calls] == [101, 102] and not run.interrupted
    assert (out / "10_chara/a.png").read_bytes() == before and "half-written" in run.notes[0]
    assert sorted(_manifest(out)["images"]) == ["10_chara/a.png", "10_chara/b.png", "3_outfit/e.png"]


def test_resume_recovers_unrecorded_images_and_remakes_changed_or_broken_ones(webui, tmp_path):
    root = make_training(tmp_path / "train")
    out = tmp_path / "reg"
    generate_reg(A1111Host(), plan_reg(root, out, tiny_settings()))
    data = _manifest(out)
    del data["images"]["10_chara/a.png"]  # image written, manifest not yet (killed in between)
    (out / "manifest.json").write_text(json.dumps(data), encoding="utf-8")
    (out / "3_outfit/e.png").write_bytes((out / "3_outfit/e.png").read_bytes()[:100])  # truncated
    (out / "10_chara/b.txt").unlink()
    webui.processing.calls.clear()
    run = generate_reg(A1111Host(), plan_reg(root, out, tiny_settings()))
    assert sorted(run.kept) == ["10_chara/a.png", "10_chara/b.png"] and run.generated == ["3_outfit/e.png"]
    assert (out / "10_chara/b.txt").read_text(encoding="utf-8").strip() == "1girl, red_hair, smile"
    assert "10_chara/a.png" in _manifest(out)["images"]
    outfit = root / "3_outfit"  # one image: cheaper checks of the other modes
    changed = generate_reg(A1111Host(), plan_reg(outfit, out, tiny_settings(suffix="solo")))
    assert changed.generated == ["3_outfit/e.png"] and not changed.kept  # prompt changed: made again
    with pytest.raises(ValueError, match="already holds 3 reg image"):
        generate_reg(A1111Host(), plan_reg(outfit, out, tiny_settings()), existing="error")
    assert generate_reg(A1111Host(), plan_reg(outfit, out, tiny_settings()), existing="overwrite").generated == [
        "3_outfit/e.png"]

def test_reroll_and_delete(webui, tmp_path):
    root = make_training(tmp_path / "train")
    out = tmp_path / "reg"
    generate_reg(A1111Host(), plan_reg(root, out, tiny_settings()))
    old = (out / "10_chara/a.png").read_bytes()
    webui.processing.calls.clear()
    result = reroll(A1111Host(), out, ["10_chara/a.png", str(out / "3_outfit/e.png"), "nope.png"], seeds=[7, 8, 9])
    assert result.changed == ["10_chara/a.png", "3_outfit/e.png"] and result.seeds == {"10_chara/a.png": 7,
                                                                                       "3_outfit/e.png": 8}
    assert result.refused == [("nope.png", "not in this reg folder's manifest")]
    assert [(c["prompt"], c["seed"], c["negative_prompt"]) for c in webui.processing.calls] == [
        ("1girl, smile", 7, "lowres"), ("shirt, skirt", 8, "lowres")]
    assert (out / "10_chara/a.png").read_bytes() != old
    entry = _manifest(out)["images"]["10_chara/a.png"]
    assert (entry["seed"], entry["rerolls"], entry["previous_seeds"]) == (7, 1, [100])
    random_seed = reroll(A1111Host(), out, ["10_chara/a.png"])
    assert random_seed.seeds["10_chara/a.png"] != 7

    gone = delete(out, ["10_chara/b.png"])
    assert gone.changed == ["10_chara/b.png"] and not (out / "10_chara/b.png").exists()
    assert not (out / "10_chara/b.txt").exists()
    assert [r.path for r in list_images(out)] == ["10_chara/a.png", "3_outfit/e.png"]
    webui.processing.calls.clear()
    run = generate_reg(A1111Host(), plan_reg(root, out, tiny_settings()))
    assert run.left_deleted == ["10_chara/b.png"] and not run.generated and not webui.processing.calls
    back = reroll(A1111Host(), out, ["10_chara/b.png"])  # a re-roll brings a deleted image back
    assert back.changed == ["10_chara/b.png"] and (out / "10_chara/b.png").is_file()
    assert "10_chara/b.png" not in _manifest(out)["deleted"]


def test_unwritable_output_and_corrupt_manifest(webui, tmp_path):
    root = make_training(tmp_path / "train")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot write reg images to .*file/reg"):
        generate_reg(A1111Host(), plan_reg(root, blocker / "reg", tiny_settings()))
    assert webui.processing.calls == []  # refused before anything was generated
    out = tmp_path / "reg"
    out.mkdir()
    (out / "manifest.json").write_text("{not json", encoding="utf-8")
    run = generate_reg(A1111Host(), plan_reg(root / "3_outfit", out, tiny_settings()))
    assert run.generated == ["3_outfit/e.png"] and "unreadable" in run.notes[0]
    assert len(list(out.glob("manifest.json.bad-*"))) == 1 and "3_outfit/e.png" in _manifest(out)["images"]
