"""kill -9 of efflab mid-run, and of its whole process group, for real: within a few
seconds no Snakemake, runner or script of the run is left, and the rerun finishes the
experiment with the table an uninterrupted run gives (sum of squares: deterministic).
With Docker (marked), no container of the killed run is left either."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_helpers import (
    EXPECTED_SUMSQ,
    counting_repo,
    executions,
    processes_in,
    start,
    sumsq_table,
    wait_until,
)

REPO = Path(__file__).resolve().parents[2]
ORPHAN_GRACE_S = 5.0
RUN = ("run", "demo", "--quick", "--json", "-q", "--cores", "2", "--set", "sleep_s=4")


def _kill(proc: subprocess.Popen, how: str) -> None:
    if how == "efflab":
        os.kill(proc.pid, signal.SIGKILL)
    else:  # the whole group efflab runs in (a terminal's Ctrl-\ or a batch system's kill)
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)


def _squares_running(repo: Path) -> bool:
    return any(ln.startswith("square") for ln in executions(repo))


def _trial(repo: Path, how: str, runtime: str) -> None:
    proc = start(repo, *RUN, "--runtime", runtime)
    assert wait_until(lambda: _squares_running(repo), 240), proc.stderr and "no square started"
    _kill(proc, how)
    left = wait_until(lambda: not processes_in(repo), ORPHAN_GRACE_S) or processes_in(repo)
    assert left is True or not left, f"orphans {ORPHAN_GRACE_S} s after kill -9: {left}"
    killed = [ln for ln in executions(repo) if ln.startswith("square")]
    assert not list((repo / "artifacts/square").glob("*/outputs.json"))  # killed before any end
    rerun = subprocess.run(  # the same command: the same invocations, in the same folders
        [sys.executable, "-m", "efflab", "--repo", str(repo), *RUN, "--runtime", runtime],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["demo"]["jobs_run"] == 4  # gens were done: cached
    squares = [ln for ln in executions(repo) if ln.startswith("square")]
    assert len(squares) == len(killed) + 4  # the killed ones once more, no one twice at once
    assert sumsq_table(repo) == {k: (1, v) for k, v in EXPECTED_SUMSQ.items()}
    assert not list((repo / "results/demo/tables").glob(".tmp-*"))
    assert not list((repo / ".snakemake/incomplete").glob("*"))


@pytest.mark.parametrize("how", ["efflab", "group"])
@pytest.mark.parametrize("trial", range(2))
def test_kill9_leaves_no_orphan_and_rerun_is_identical(
    tmp_path: Path, how: str, trial: int
) -> None:
    repo = counting_repo(tmp_path / "proj")
    _trial(repo, how, "host")


@pytest.mark.docker
@pytest.mark.parametrize("how", ["efflab", "group"])
def test_kill9_with_docker_leaves_no_container(tmp_path: Path, docker_engine, how: str) -> None:
    import docker

    repo = counting_repo(tmp_path / "proj")
    shutil.copytree(REPO / "envs/base", repo / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    for alias in ("gen", "square"):
        meta = repo / "scripts" / alias / "meta.yaml"
        meta.write_text(meta.read_text().replace("run: run", "env: base\nrun: run"))
    built = subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), "env", "build", "base"],
        capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    client = docker.from_env(timeout=60)

    def mine() -> list[str]:
        cs = client.containers.list(all=True, filters={"label": "efflab.key"}, ignore_removed=True)
        return [c.name for c in cs if str(repo) in json.dumps(c.attrs.get("Mounts", []))]

    _trial(repo, how, "docker")
    assert wait_until(lambda: not mine(), ORPHAN_GRACE_S) or not mine(), mine()
