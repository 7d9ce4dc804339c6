"""Warm containers for real: one container serves a class's jobs in turn, preloads only
what the script imports, and leaves the next job nothing (no files in /tmp, no stray
process); the run's end removes it. Real engine, real image (the `base` env)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_docker_runtime import containers, experiment, proj, records, template, write  # noqa: F401

from efflab.runtime import warm

pytestmark = pytest.mark.docker

PROBE_META = """\
alias: warmprobe
uid: 00000000000000e1
tags: [demo, warmprobe]
description: Reports which container ran it and what an earlier job left behind.
version: "1"
env: base
run: run.py
inputs:
  i: {type: integer, default: 0}
outputs:
  metrics:
    i: {unit: "1", better: higher}
"""
PROBE_PY = """\
import os, socket, subprocess, sys

PRELOADED = sorted(m for m in ("numpy", "yaml") if m in sys.modules)


def run(ctx):
    import numpy  # noqa: F401  (the preload follows what run.py imports)

    left = sorted(e for e in os.listdir("/tmp") if e.startswith("left-"))
    sleepers = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            sleepers += open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep")
        except OSError:
            pass
    open(f"/tmp/left-{ctx.inputs['i']}", "w").write("x")
    subprocess.Popen(["sleep", "300"], start_new_session=True)  # escapes the job's group
    return {"metrics": {"i": ctx.inputs["i"]},
            "values": {"host": socket.gethostname(), "preloaded": PRELOADED, "left": left,
                       "sleepers": sleepers}}
"""


def probe_values(repo: Path) -> list[dict]:
    return [json.loads(f.read_text())["values"]
            for f in sorted((repo / "artifacts" / "warmprobe").glob("*/outputs.json"))]  # fmt: skip


@pytest.fixture
def probe(proj: Path) -> Path:  # noqa: F811
    write(proj / "scripts/warmprobe/meta.yaml", PROBE_META)
    write(proj / "scripts/warmprobe/run.py", PROBE_PY)
    experiment(proj, "warm", "demo,warmprobe", grid={"i": [1, 2, 3]})
    return proj


def test_one_container_serves_the_class_and_each_job_starts_clean(probe: Path, run_efflab) -> None:
    run_efflab(probe, "run", "warm", "--runtime", "docker", "--cores", "1", "-q", check=True)
    vals = probe_values(probe)
    assert len(vals) == 3
    assert len({v["host"] for v in vals}) == 1, vals  # one container, three jobs
    assert all(v["preloaded"] == ["numpy"] for v in vals), vals  # yaml: not imported by run.py
    assert all(v["left"] == [] and v["sleepers"] == 0 for v in vals), vals
    run_id = records(probe, "warm")[0]["run_id"]
    assert not containers(**{"efflab.run": run_id})  # the run's end removed it
    assert not warm.dir_for(run_id).exists()


def test_switched_off_each_job_gets_a_fresh_container(probe: Path, run_efflab) -> None:
    run_efflab(probe, "run", "warm", "--runtime", "docker", "--cores", "1", "-q", check=True,
               env={"EFFLAB_WARM_CONTAINERS": "0"})  # fmt: skip
    vals = probe_values(probe)
    assert len({v["host"] for v in vals}) == 3, vals
    assert all(v["preloaded"] == [] and v["left"] == [] for v in vals), vals


def test_script_imports_follow_helpers_not_whole_packages(tmp_path: Path) -> None:
    write(tmp_path / "s/run.py", "import json\nfrom helper.fast import f\n\ndef run(ctx):\n    import numpy\n")  # fmt: skip
    write(tmp_path / "lib/helper/__init__.py", "")
    write(tmp_path / "lib/helper/fast.py", "from . import util\nimport scipy.stats\n")
    write(tmp_path / "lib/helper/util.py", "import yaml\n")
    write(tmp_path / "lib/helper/slow.py", "import torch\n")  # never imported by the script
    found = warm.script_imports(str(tmp_path / "s"), [str(tmp_path / "lib")])
    assert found == {"json", "numpy", "scipy", "yaml"}
