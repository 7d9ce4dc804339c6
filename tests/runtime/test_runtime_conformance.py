"""The Runtime contract, checked the same way for every registered runtime.

Like Snakemake's `TestWorkflowsBase` for executor plugins: a new runtime registered
in `efflab.runtime.base` runs this whole suite without a new line here. Each case
drives the contract itself (`identity`, `prepare`, `execute`, `cleanup`; the cancel
case the real job entry, `python -m efflab.runtime.runner`) on one probe script, and
checks the failure kind the runtime set (never error text). A runtime that does not
answer here (no Docker engine) skips its cases with that reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_tiny_repo, write

from efflab.core.invocation import Invocation
from efflab.core.lifeline import start_time
from efflab.plan.planner import Planner, single_invocation
from efflab.runtime import base, runner
from efflab.runtime.base import Runtime
from efflab.runtime.failure import OOM, SCRIPT, TIMEOUT, InvocationFailed
from efflab.workflow.snakemake_adapter import write_invocations

PROBE_META = """\
alias: probe
uid: 00000000000000c1
tags: [conformance, probe]
description: Does what its mode says (answer, fail, sleep, hog memory, get killed).
version: "1"
env: probe
run: run.py
inputs:
  mode: {type: string, enum: [answer, error, sleep, hog, killed], default: answer}
  sleep_s: {type: number, default: 0, minimum: 0}
  alloc_mb: {type: integer, default: 0, minimum: 0}
  timeout_s: {type: number, default: 60, exclusiveMinimum: 0}
  mem_mb: {type: integer, default: 512, minimum: 16}
outputs:
  metrics:
    answer: {unit: "1", better: higher}
resources:
  timeout_s: "{timeout_s}"
  mem_mb: "{mem_mb}"
"""
PROBE_PY = """\
import os, signal, time


def run(ctx):
    mode = ctx.inputs["mode"]
    (ctx.out_dir / "pid").write_text(str(os.getpid()))
    if mode == "error":
        raise RuntimeError("asked to fail")
    if mode == "sleep":
        time.sleep(ctx.inputs["sleep_s"])
    if mode == "hog":  # written bytes: resident, unlike a zero-filled allocation
        hog = [b"x" * (1 << 20) for _ in range(ctx.inputs["alloc_mb"])]
        print(len(hog))
    if mode == "killed":  # what the kernel's OOM killer does to a process
        os.kill(os.getpid(), signal.SIGKILL)
    return {"metrics": {"answer": 42.0}, "values": {"mode": mode}}
"""


# a runtime that needs a service beyond this machine's processes carries that service's
# marker, so the fast tier (`--fast`) leaves its cases out
NEEDS = {"docker": pytest.mark.docker}


@pytest.fixture(params=[pytest.param(n, marks=NEEDS.get(n, ())) for n in base.names()])
def runtime(request: pytest.FixtureRequest) -> Runtime:
    rt = base.get(request.param)
    if not rt.available():
        pytest.skip(f"runtime {request.param} does not answer here (no engine)")
    return rt


# the smallest env: the base image's python3 runs efflab's (stdlib) runner and the probe
PROBE_DOCKERFILE = """\
ARG BASE_IMAGE=efflab/debian-bookworm:bootstrap
FROM ${BASE_IMAGE}
"""


@pytest.fixture
def probe_repo(tmp_path: Path) -> Path:
    repo = make_tiny_repo(tmp_path / "proj")
    write(repo / "envs/probe/Dockerfile", PROBE_DOCKERFILE)
    write(repo / "scripts/probe/meta.yaml", PROBE_META)
    write(repo / "scripts/probe/run.py", PROBE_PY)
    return repo


def planned(repo: Path, rt: Runtime, **inputs) -> tuple[Invocation, Path]:
    """The probe planned for this runtime, its invocation.json written, prepared."""
    planner = Planner(repo, runtime=rt.identity())
    plan = planner.plan(single_invocation(planner.registry.find("probe", "test"), inputs))
    inv = plan.invocations[plan.points[0].key]
    assert inv.key_parts["runtime"] == rt.identity().key_part()
    write_invocations(repo, plan.invocations.values())
    folder = repo / inv.folder
    runner.prepare(folder)
    rt.prepare(repo, [inv])
    return inv, folder


def failure_of(rt: Runtime, repo: Path, inv: Invocation, folder: Path) -> InvocationFailed:
    with pytest.raises(InvocationFailed) as info:
        rt.execute(repo, inv, folder)
    return info.value


def test_success_returns_the_outputs(runtime: Runtime, probe_repo: Path) -> None:
    inv, folder = planned(probe_repo, runtime)
    out = runtime.execute(probe_repo, inv, folder)
    assert out["metrics"] == {"answer": 42.0} and out["values"] == {"mode": "answer"}
    assert out["runtime"] in base.names()  # a no-env step may fall back to the host
    assert out["duration_s"] >= 0 and out["started"] and out["ended"]
    json.dumps(out)  # it becomes outputs.json as it is


def test_script_error_is_kind_script(runtime: Runtime, probe_repo: Path) -> None:
    inv, folder = planned(probe_repo, runtime, mode="error")
    exc = failure_of(runtime, probe_repo, inv, folder)
    assert exc.kind == SCRIPT
    assert not (folder / "outputs.json").exists()


def test_timeout_is_kind_timeout_and_ends_the_script(runtime: Runtime, probe_repo: Path) -> None:
    inv, folder = planned(probe_repo, runtime, mode="sleep", sleep_s=120, timeout_s=2)
    t0 = time.monotonic()
    exc = failure_of(runtime, probe_repo, inv, folder)
    assert exc.kind == TIMEOUT
    assert time.monotonic() - t0 < 30
    _assert_gone(runtime, inv, folder)


def test_out_of_memory_is_kind_oom(runtime: Runtime, probe_repo: Path) -> None:
    """A runtime that enforces limits (`seals`) is made to kill the script at its
    memory limit; the host enforces none, so there the script meets what the
    kernel's OOM killer would do to it (SIGKILL)."""
    if runtime.seals:
        inv, folder = planned(probe_repo, runtime, mode="hog", alloc_mb=400, mem_mb=64)
    else:
        inv, folder = planned(probe_repo, runtime, mode="killed")
    assert failure_of(runtime, probe_repo, inv, folder).kind == OOM
    assert not (folder / "outputs.json").exists()


def test_cancel_ends_the_job_and_cleanup_leaves_nothing(runtime: Runtime, probe_repo: Path) -> None:
    inv, folder = planned(probe_repo, runtime, mode="sleep", sleep_s=120)
    run_id = f"conformance-{os.getpid()}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "efflab.runtime.runner", "--runtime", runtime.name, str(folder)],
        env={**os.environ, "EFFLAB_RUN_ID": run_id},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (folder / "out/pid").exists() and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert (folder / "out/pid").exists(), "the probe never started"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - t0 < 15, err
    assert proc.returncode != 0 and not (folder / "outputs.json").exists(), err
    _assert_gone(runtime, inv, folder)
    left = runtime.cleanup(run_id)
    assert isinstance(left, list)
    assert runtime.cleanup(run_id) == []  # idempotent: nothing of the run is left


def test_cleanup_after_a_run_is_safe_and_idempotent(runtime: Runtime, probe_repo: Path) -> None:
    inv, folder = planned(probe_repo, runtime)
    runtime.execute(probe_repo, inv, folder)
    assert isinstance(runtime.cleanup("conformance-run"), list)
    assert runtime.cleanup("conformance-run") == []
    assert runtime.cleanup("") == []


def _assert_gone(runtime: Runtime, inv: Invocation, folder: Path) -> None:
    """No process (host) and no container (docker) of the invocation is left."""
    deadline = time.monotonic() + 10
    pid_file = folder / "out/pid"
    if runtime.name == "docker":
        import docker

        client = docker.from_env(timeout=30)

        def alive() -> bool:
            found = client.containers.list(
                all=True, filters={"label": f"efflab.key={inv.key}"}, ignore_removed=True
            )
            return bool(found)
    else:

        def alive() -> bool:
            return pid_file.exists() and start_time(int(pid_file.read_text())) is not None

    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(), f"{runtime.name}: something of {inv.key} is still running"
