"""Pinned cores for exclusive timing jobs, for real: a local run on this machine.

An exclusive run.py script and an exclusive run.sh script (the job server's fork and
vfork paths) report the affinity they saw from inside; a plain script beside them
must see the rest. The records must say which cores, the affinity read back and that
it held; with $EFFLAB_NO_PIN nothing is pinned and the record says why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import efflab, write

NO_WAIT = {"EFFLAB_QUIET_WAIT_S": "0"}  # measure at once: this test is about placement
pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="pinning needs at least two allowed CPUs"
)

PY_META = """\
alias: {alias}
uid: {uid}
tags: [pin, {alias}]
description: Reports the CPUs it may run on.
version: "1"
run: run.py
inputs:
  n: {{type: integer, default: 1}}
outputs:
  metrics:
    ncpus: {{unit: "1", better: lower}}
resources:
  exclusive: {exclusive}
"""
DEP = """\
deps:
  - {name: src, tags: "pin,plain", inputs: {n: "{n}"}}
"""
PY = """\
import os


def run(ctx):
    cpus = sorted(os.sched_getaffinity(0))
    return {"metrics": {"ncpus": len(cpus)}, "values": {"cpus": cpus}}
"""
SH_META = PY_META.replace("run: run.py", "run: run.sh")
SH = """\
cpus=$(grep Cpus_allowed_list /proc/self/status | cut -f2)
echo "{\\"metrics\\": {\\"ncpus\\": 1}, \\"values\\": {\\"list\\": \\"$cpus\\"}}" > "$EFFLAB_OUTPUTS"
"""
EXP = """\
name: {name}
script: pin,{alias}
grid: {{n: [1, 2]}}
repetitions: 1
"""


@pytest.fixture
def pin_repo(tiny_repo: Path) -> Path:
    for alias, uid, ex, meta, body, fname in (
        ("timed", "00000000000000f1", "true", PY_META, PY, "run.py"),
        ("plain", "00000000000000f2", "false", PY_META, PY, "run.py"),
        ("timedsh", "00000000000000f3", "true", SH_META, SH, "run.sh"),
    ):
        text = meta.format(alias=alias, uid=uid, exclusive=ex)
        if alias == "timed":  # a plain dep: in the same run, beside the measured core
            text = text.replace("outputs:", DEP + "outputs:")
        write(tiny_repo / f"scripts/{alias}/meta.yaml", text)
        write(tiny_repo / f"scripts/{alias}/{fname}", body)
        write(tiny_repo / f"workflows/experiments/{alias}.yaml", EXP.format(name=alias, alias=alias))  # fmt: skip
    return tiny_repo


def records(repo: Path, exp: str) -> list[dict]:
    return [json.loads(f.read_text()) for f in (repo / "results" / exp / "runs").glob("*.json")]


def test_exclusive_jobs_get_the_measured_core_and_others_the_rest(pin_repo: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    measured, rest = cpus[-1:], cpus[:-1]
    for exp in ("timed", "timedsh"):
        r = efflab(pin_repo, "run", exp, "--cores", "2", "--runtime", "host", env=NO_WAIT)
        assert r.returncode == 0, r.stdout + r.stderr
    for rec in records(pin_repo, "timed"):
        assert rec["values"]["cpus"] == measured  # what the script itself saw
        pin = rec["pinning"]
        assert pin["pinned"] and pin["cpus"] == measured and pin["rest"] == rest
        assert pin["affinity"] == measured and pin["held"] is True
        assert rec["contention"]["pinned_cpus"] == measured
        assert isinstance(rec["contention"]["others_on_pinned"], float)
        assert rec["provenance"]["machine"]["allowed_cpus"] == cpus
    deps = [json.loads(f.read_text()) for f in (pin_repo / "artifacts/plain").glob("*/outputs.json")]  # fmt: skip
    assert len(deps) == 2
    for out in deps:  # the timed script's dep ran in the same run, on the rest
        assert out["values"]["cpus"] == rest
        assert out["pinning"]["cpus"] == rest and out["pinning"]["held"] is True
    for rec in records(pin_repo, "timedsh"):  # run.sh: the job server's vfork path
        assert rec["values"]["list"] == ",".join(map(str, measured))
        assert rec["pinning"]["affinity"] == measured and rec["pinning"]["held"] is True


def test_a_run_without_exclusive_jobs_keeps_every_core(pin_repo: Path) -> None:
    r = efflab(pin_repo, "run", "plain", "--runtime", "host")
    assert r.returncode == 0, r.stdout + r.stderr
    for rec in records(pin_repo, "plain"):
        assert rec["values"]["cpus"] == sorted(os.sched_getaffinity(0))
        assert rec["pinning"]["pinned"] is False


def test_no_pin_runs_unpinned_and_says_why(pin_repo: Path) -> None:
    r = efflab(pin_repo, "run", "timed", "--runtime", "host", env={"EFFLAB_NO_PIN": "1", **NO_WAIT})
    assert r.returncode == 0, r.stdout + r.stderr
    for rec in records(pin_repo, "timed"):
        assert rec["values"]["cpus"] == sorted(os.sched_getaffinity(0))
        assert rec["pinning"]["pinned"] is False and "EFFLAB_NO_PIN" in rec["pinning"]["why"]


@pytest.mark.docker
def test_a_container_gets_the_measured_core_as_its_cpuset(pin_repo: Path, docker_engine) -> None:
    import shutil

    from conftest import REPO

    shutil.copytree(REPO / "envs" / "base", pin_repo / "envs" / "base")
    for alias in ("timed", "plain"):
        meta = pin_repo / f"scripts/{alias}/meta.yaml"
        meta.write_text(meta.read_text().replace('version: "1"\n', 'version: "1"\nenv: base\n'))
    r = efflab(pin_repo, "run", "timed", "--cores", "2", "--runtime", "docker", env=NO_WAIT)
    assert r.returncode == 0, r.stdout + r.stderr
    cpus = sorted(os.sched_getaffinity(0))
    for rec in records(pin_repo, "timed"):
        assert rec["provenance"]["runtime"] == "docker"
        assert rec["values"]["cpus"] == cpus[-1:]  # what the script saw inside
        assert rec["pinning"]["affinity"] == cpus[-1:] and rec["pinning"]["held"] is True
    for out in (json.loads(f.read_text()) for f in (pin_repo / "artifacts/plain").glob("*/outputs.json")):  # fmt: skip
        assert out["values"]["cpus"] == cpus[:-1]
