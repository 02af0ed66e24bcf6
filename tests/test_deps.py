"""The known-good table and the installer (lora_bakery.deps, lora_bakery.deps_install).

Pure logic runs in-process. The step-down tests run the real installer in a throwaway venv with
real pip against tiny hand-made wheels (``--no-index --find-links``): nothing is mocked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lora_bakery import deps
from lora_bakery.deps import Record, Requirement, Status
from lora_bakery.deps_install import _ordered, check, check_many, last_error
from tests.wheelkit import build_wheel, freeze, make_venv, offline_env, shadow_pip

ROOT = Path(__file__).resolve().parent.parent


# --- pure logic ------------------------------------------------------------------------------

def test_table_is_sane():
    names = [r.dist for r in deps.REQUIREMENTS]
    assert len(names) == len(set(names))
    for r in deps.REQUIREMENTS:
        assert r.feature in deps.FEATURES, r
        compile(r.check, r.dist, "exec")
        assert r.installable == (r.dist not in deps.HOST_OWNED), r
    by = {r.dist: r for r in deps.REQUIREMENTS}
    # the versions known to import in A1111 1.10.1 (reference/a1111-env.md) are in the step-down lists
    assert "0.31.0" in by["diffusers"].candidates and "0.13.2" in by["peft"].candidates
    assert by["transparent-background"].lazy and not by["diffusers"].lazy
    for never in ("torch", "torchvision", "xformers", "gradio"):
        assert never not in by or not by[never].installable


def test_candidate_order_newest_first_and_gpu_build_before_cpu():
    by = {r.dist: r for r in deps.REQUIREMENTS}
    assert deps.pip_specs(by["diffusers"]) == ["diffusers", "diffusers==0.31.0"]
    assert deps.pip_specs(by["peft"]) == ["peft", "peft==0.13.2", "peft==0.11.1", "peft==0.10.0"]
    ort = by["onnxruntime"]
    assert deps.pip_specs(ort, cuda=False) == ["onnxruntime"]
    gpu = deps.pip_specs(ort, cuda=True)
    assert gpu == (["onnxruntime-gpu", "onnxruntime"] if sys.platform in {"linux", "win32"} else ["onnxruntime"])
    odd = Requirement("x", "core", "", candidates=(None, "<2", "x[extra]==1.5", "1.0"))
    assert deps.pip_specs(odd) == ["x", "x<2", "x[extra]==1.5", "x==1.0"]


def test_torch_cuda_read_without_import_matches_torch():
    import torch

    assert deps.torch_cuda() == (torch.version.cuda is not None)


def test_constraints_pin_every_dist_exactly():
    text = deps.constraints_text({"torch": "2.13.0+cpu", "pillow": "9.5.0", "weird": "1.0-foo bar", "a": "1!2.0.post1"})
    assert text.splitlines() == ["a==1!2.0.post1", "pillow==9.5.0", "torch==2.13.0+cpu", "weird===1.0-foo bar"]


def test_installed_sees_this_environment():
    dists = deps.installed()
    assert dists["pip"] and "torch" in dists and "huggingface-hub" in dists  # canonical names
    assert deps.canon("Huggingface_Hub") == "huggingface-hub" and deps.canon("Pillow") == "pillow"


def test_missing_reads_metadata_only():
    here = Requirement("pip", "core", "import pip")
    gone = Requirement("surely-not-installed-bakery", "core", "import nothing")
    alt = Requirement("surely-not-installed-bakery", "core", "", provided_by=("pip",))
    old_py = Requirement("also-not-installed-bakery", "core", "", python_below=(3, 0))
    lazy = Requirement("lazy-not-installed-bakery", "masks", "", lazy=True)
    assert deps.missing([here, gone, alt, old_py, lazy]) == [gone]
    assert deps.missing([here, gone, lazy], lazy=None) == [gone, lazy]
    assert deps.found(alt, deps.installed())[0] == "pip"


def test_requirements_for_follows_feature_needs():
    dists = {r.dist for r in deps.requirements_for(["training"])}
    assert {"peft", "diffusers", "torch"} <= dists and "onnxruntime" not in dists
    with pytest.raises(ValueError, match="unknown feature"):
        deps.requirements_for(["nope"])


def test_install_order_puts_needs_first():
    order = [r.dist for r in _ordered(deps.applicable(lazy=False))]
    for r in deps.applicable(lazy=False):
        for n in r.needs:
            assert order.index(n) < order.index(r.dist), (n, r.dist)


def test_status_round_trip_atomic_and_tolerant(tmp_path):
    path = tmp_path / "sub" / "status.json"
    st = Status("abc", {"peft": Record("peft", False, None, "no version works", [["peft", "ImportError: x"]])})
    assert deps.save_status(st, path) == path
    back = deps.load_status(path)
    assert back.context == "abc" and back.records == st.records and back.python == sys.executable
    assert [p.name for p in path.parent.iterdir()] == ["status.json"]  # no temp file left
    path.write_text("{not json")
    assert deps.load_status(path) == Status()
    assert deps.load_status(tmp_path / "absent.json") == Status()


def test_status_path_is_per_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("BAKERY_DEPS_STATUS", raising=False)
    p = deps.status_path()
    assert p.name.startswith("deps-") and p.suffix == ".json"
    assert deps._env_key() in p.name
    monkeypatch.setenv("BAKERY_DEPS_STATUS", str(tmp_path / "x.json"))
    assert deps.status_path() == tmp_path / "x.json"


def test_feature_status_uses_records_only_while_the_environment_matches(tmp_path):
    path = tmp_path / "status.json"
    dists = deps.installed()
    peft = next(r for r in deps.REQUIREMENTS if r.dist == "peft")
    hit = deps.found(peft, dists)
    assert hit is not None, "both test environments have peft"
    states = deps.feature_status(path=path)  # no status file: installed = usable, not verified yet
    assert set(states) == set(deps.FEATURES)
    assert states["training"] == (True, f"peft {hit[1]} (not import-checked yet)")
    assert states["masks"][0]  # not installed yet: installs when asked (bakery doctor --install masks)

    bad = Record("peft", False, hit[1], "ImportError: cannot import name 'x'")
    deps.save_status(Status(deps.context(dists), {"peft": bad}), path)
    ok, detail = deps.feature_status(path=path)["training"]
    assert not ok and "does not import here: ImportError" in detail

    deps.save_status(Status("stale-context", {"peft": bad}), path)  # host changed since: forget it
    assert deps.feature_status(path=path)["training"][0]

    # a feature built on a broken one is off too, and says why
    diffusers = next(r for r in deps.REQUIREMENTS if r.dist == "diffusers")
    d_hit = deps.found(diffusers, dists)
    broken = Record(d_hit[0], False, d_hit[1], "ImportError: no Dinov2WithRegistersConfig")
    deps.save_status(Status(deps.context(dists), {"diffusers": broken}), path)
    states = deps.feature_status(path=path)
    assert not states["core"][0] and "Dinov2WithRegistersConfig" in states["core"][1]
    assert states["training"] == (False, "needs core")
    assert states["tagging"][0] or "onnxruntime" in states["tagging"][1]  # tagging does not need core


def test_requirement_state_for_missing_packages():
    st, ctx = Status(), "c"
    torchlike = Requirement("torch-not-here", "core", "", installable=False)
    assert not deps.requirement_state(torchlike, {}, st, ctx)[0]
    assert "never installs" in deps.requirement_state(torchlike, {}, st, ctx)[1]
    lazy = Requirement("tb-not-here", "masks", "", lazy=True)
    assert deps.requirement_state(lazy, {}, st, ctx) == (
        True, "tb-not-here not installed yet (install it with: bakery doctor --install masks)")
    failed = Status(ctx, {"tb-not-here": Record("tb-not-here", False, None, "no version works")})
    assert deps.requirement_state(lazy, {}, failed, ctx) == (False, "no version works")
    plain = Requirement("pkg-not-here", "core", "")
    assert "not installed" in deps.requirement_state(plain, {}, st, ctx)[1]


def test_last_error_picks_the_telling_line():
    tb = "Traceback (most recent call last):\n  File x\nImportError: cannot import name 'Cache'\n"
    assert last_error(tb) == "ImportError: cannot import name 'Cache'"
    pip = "Looking in links\nERROR: Could not find a version that satisfies the requirement zz\nnotice\n"
    assert last_error(pip).startswith("ERROR: Could not find a version")
    assert last_error("") == "no output"
    diffusers = ("RuntimeError: Failed to import diffusers.models.autoencoders.autoencoder_kl because of the "
                 "following error (look up to see its traceback):\ncannot import name 'Dinov2WithRegistersConfig'\n")
    assert last_error(diffusers).endswith("traceback): cannot import name 'Dinov2WithRegistersConfig'")


def test_checks_run_in_a_fresh_interpreter():
    assert check("import json") == (True, "")
    ok, err = check("raise ImportError('nope here')")
    assert not ok and err == "ImportError: nope here"
    res = check_many({"a": "import json", "b": "import surely_not_a_module_bakery", "c": "print('noise')"})
    assert res["a"] == (True, "") and res["c"] == (True, "")
    assert not res["b"][0] and "ModuleNotFoundError" in res["b"][1]


# --- the real installer in a throwaway venv ----------------------------------------------------

DRIVER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from lora_bakery.deps import Requirement
    from lora_bakery.deps_install import run_install
    spec = json.loads(sys.argv[1])
    reqs = [Requirement(**r) for r in spec["reqs"]]
    status, acted = run_install(reqs, lazy=None, retry=spec.get("retry", False),
                                pip_args=["--no-index", "--find-links", spec["links"]],
                                status_file=Path(spec["status"]), log=lambda m: print("LOG", m, flush=True))
    print("RESULT " + json.dumps({"acted": acted, "records": {k: vars(v) for k, v in status.records.items()}}))
    """
)


@pytest.fixture(scope="module")
def probe_world(tmp_path_factory):
    """A venv holding ``keepme 1.0`` (installed from a folder pip will not see later) and a links
    folder with newer keepme, a probe whose newest allowed version does not import, and more."""
    base = tmp_path_factory.mktemp("probe")
    links, private = base / "links", base / "private"
    build_wheel(private, "keepme", "1.0", {"keepme/__init__.py": "V = 1\n"})
    build_wheel(links, "keepme", "2.0", {"keepme/__init__.py": "V = 2\n"})
    build_wheel(links, "bakerydep", "1.0", {"bakerydep/__init__.py": ""})
    build_wheel(links, "bakeryprobe", "1.0", {"bakeryprobe/__init__.py": "import keepme\nOK = 1\n"}, ["keepme"])
    build_wheel(links, "bakeryprobe", "2.0", {"bakeryprobe/__init__.py": "raise ImportError('probe 2.0 needs a newer host')\n"},
                ["keepme", "bakerydep"])
    build_wheel(links, "bakeryprobe", "3.0", {"bakeryprobe/__init__.py": "OK = 3\n"}, ["keepme>=2"])
    build_wheel(links, "bakerybroken", "1.0", {"bakerybroken/__init__.py": "raise ImportError('always broken')\n"},
                ["bakerydep"])
    python = make_venv(base / "venv")
    env = offline_env(ROOT)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-index", str(private / "keepme-1.0-py3-none-any.whl")],
                   check=True, env=env, capture_output=True)
    return {"python": python, "links": links, "env": env, "base": base}


def _drive(world, reqs, status, *, retry=False, env=None):
    arg = json.dumps({"reqs": reqs, "links": str(world["links"]), "status": str(status), "retry": retry})
    proc = subprocess.run([str(world["python"]), "-c", DRIVER, arg], capture_output=True, text=True,
                          env=env or world["env"], timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[7:]), proc.stdout


@pytest.mark.slow
def test_step_down_to_a_version_that_imports_and_hold_what_was_there(probe_world):
    w = probe_world
    before = freeze(w["python"], w["env"])
    assert before["keepme"] == "1.0" and "bakeryprobe" not in before
    req = {"dist": "bakeryprobe", "feature": "core", "check": "import bakeryprobe; assert bakeryprobe.OK",
           "candidates": [None, "1.0"]}
    result, out = _drive(w, [req], w["base"] / "s1.json")
    rec = result["records"]["bakeryprobe"]
    assert rec["ok"] and rec["version"] == "1.0", out
    # pip's own pick (3.0 needs keepme>=2, held at 1.0) was 2.0, which does not import: rolled back
    assert [t[0] for t in rec["tried"]] == ["bakeryprobe", "bakeryprobe==1.0"]
    assert "bakeryprobe 2.0 does not import here (ImportError: probe 2.0 needs a newer host)" in rec["tried"][0][1]
    after = freeze(w["python"], w["env"])
    assert after.pop("bakeryprobe") == "1.0"
    assert after == before  # keepme still 1.0, bakerydep (added by the failed 2.0) removed again

    # installed and verified: a second run makes no pip call and no subprocess at all
    marker = w["base"] / "pip-called.txt"
    shadow = shadow_pip(w["base"] / "shadow", marker)
    env = {**w["env"], "PYTHONPATH": f"{shadow}{os.pathsep}{ROOT}"}
    t0 = time.monotonic()
    result2, _ = _drive(w, [req], w["base"] / "s1.json", env=env)
    assert not result2["acted"] and not marker.exists()
    assert time.monotonic() - t0 < 5


@pytest.mark.slow
def test_nothing_compatible_marks_unavailable_and_keeps_the_env(probe_world):
    w = probe_world
    before = freeze(w["python"], w["env"])
    req = {"dist": "bakerybroken", "feature": "tagging", "check": "import bakerybroken", "candidates": [None, "1.0"]}
    status = w["base"] / "s2.json"
    result, out = _drive(w, [req], status)
    rec = result["records"]["bakerybroken"]
    assert not rec["ok"] and rec["version"] is None
    assert len(rec["tried"]) == 1, "1.0 was pip's own pick already: not tried twice"
    assert "always broken" in rec["detail"]
    assert freeze(w["python"], w["env"]) == before

    # the verdict sticks while the environment is unchanged: no pip call on the next launch
    marker = w["base"] / "pip-called-2.txt"
    shadow = shadow_pip(w["base"] / "shadow2", marker)
    env = {**w["env"], "PYTHONPATH": f"{shadow}{os.pathsep}{ROOT}"}
    result2, _ = _drive(w, [req], status, env=env)
    assert not result2["acted"] and not result2["records"]["bakerybroken"]["ok"] and not marker.exists()
    # ...and --retry does try again (here through the shadow pip, which fails: still unavailable)
    result3, _ = _drive(w, [req], status, env=env, retry=True)
    assert result3["acted"] and marker.exists() and not result3["records"]["bakerybroken"]["ok"]


@pytest.mark.slow
def test_an_interrupted_attempt_is_undone_on_the_next_run(probe_world):
    """The webui was closed while pip installed a candidate: its leftovers must not stay behind."""
    w = probe_world
    status = w["base"] / "s3.json"
    before = freeze(w["python"], w["env"])
    journal = status.with_suffix(".journal")
    journal.write_text(json.dumps({"before": sorted(before), "started": time.time(), "spec": "bakerybroken"}))
    # how far the killed attempt got: pip had installed the candidate and a new dependency
    subprocess.run([str(w["python"]), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(w["links"]),
                    "bakerybroken"], check=True, env=w["env"], capture_output=True)
    assert {"bakerybroken", "bakerydep"} <= set(freeze(w["python"], w["env"]))
    result, out = _drive(w, [], status)
    assert result["acted"] and "an earlier install was interrupted; removing what it added: bakerybroken, bakerydep" in out
    assert freeze(w["python"], w["env"]) == before and not journal.exists()


def test_install_lock_takes_over_a_lock_left_by_a_dead_installer(tmp_path):
    from lora_bakery.deps_install import install_lock

    status = tmp_path / "status.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    status.with_suffix(".lock").write_text(str(dead.pid))
    t0 = time.monotonic()
    with install_lock(status, wait_s=5):
        assert status.with_suffix(".lock").read_text() == str(os.getpid())
    assert not status.with_suffix(".lock").exists() and time.monotonic() - t0 < 2
    status.with_suffix(".lock").write_text(str(os.getpid()))  # a live holder: wait, then give up
    with pytest.raises(TimeoutError), install_lock(status, wait_s=0.6):
        pass


@pytest.mark.slow
def test_feature_status_verify_checks_once_and_remembers(tmp_path):
    path = tmp_path / "status.json"
    states = deps.feature_status(path=path, verify=True)
    assert states["core"][0] and states["training"][0], states
    assert not any(detail.endswith(deps.UNVERIFIED) for _, detail in states.values())
    saved = json.loads(path.read_text())["records"]
    assert saved["diffusers"]["ok"] and saved["torch"]["ok"]
    t0 = time.monotonic()
    assert deps.feature_status(path=path, verify=True) == states
    assert time.monotonic() - t0 < 2  # nothing left to check: no subprocess
