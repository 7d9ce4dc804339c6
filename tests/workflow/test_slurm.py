"""The slurm profile against a real single-node SLURM cluster (tools/slurm-cluster.sh).

A run through `--profile slurm` must give the same table as a local run of the same
experiment (same keys, same rows; deterministic metrics identical, timing metrics
within noise), and its jobs must really have gone through sbatch: SLURM's own
job-completion log lists them. A job the partition cannot hold is refused before
anything is submitted.

The session fixture starts the cluster when none answers and stops it again only if
it started it. Where it cannot start one (not root, no apt-get, no executor plugin)
the tests skip and say why. EFFLAB_SLURM=off skips them outright.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "tools" / "slurm-cluster.sh"
TIME_UNITS = {"s", "ms", "us", "ns"}

pytestmark = pytest.mark.slurm


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(ln for ln in text.strip().splitlines()[-lines:] if ln.strip())


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Path]:
    """A running cluster; yields the path of its job-completion log."""
    if os.environ.get("EFFLAB_SLURM", "").lower() in ("0", "off", "no"):
        pytest.skip("SLURM tests disabled by EFFLAB_SLURM=off")
    if importlib.util.find_spec("snakemake_executor_plugin_slurm") is None:
        pytest.skip("snakemake-executor-plugin-slurm not installed (pip install -e '.[slurm]')")
    started = False
    up = shutil.which("sinfo") and subprocess.run([CLUSTER, "status"], capture_output=True)
    if not up or up.returncode != 0:
        t0 = time.monotonic()
        proc = subprocess.run([CLUSTER, "start"], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            pytest.skip(f"cannot start a SLURM cluster: {_tail(proc.stderr or proc.stdout)}")
        started = True
        print(f"\nslurm cluster started in {time.monotonic() - t0:.1f} s")
    conf = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True)
    settings = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", conf.stdout, re.M))
    try:
        if settings.get("JobCompType") != "jobcomp/filetxt":
            pytest.skip(
                f"this cluster keeps no job-completion text log "
                f"(JobCompType={settings.get('JobCompType')}); start tools/slurm-cluster.sh"
            )
        log = Path(settings["JobCompLoc"])
        # the log outlives test sessions, and a later session's tmp paths repeat earlier
        # ones (pytest-of-root/pytest-N): only what this session appended counts
        LOG_START[log] = log.stat().st_size if log.exists() else 0
        yield log
    finally:
        if started:
            subprocess.run([CLUSTER, "stop"], capture_output=True, timeout=120)


LOG_START: dict[Path, int] = {}  # job-completion log -> its size when the session began


def completed_jobs(log: Path, workdir: Path) -> list[dict[str, str]]:
    """Jobs in SLURM's job-completion log that ran in `workdir` during this session."""
    if not log.exists():
        return []
    data = log.read_bytes()
    start = LOG_START.get(log, 0)
    text = data[start if start <= len(data) else 0 :].decode(errors="replace")
    jobs = [dict(re.findall(r"(\w+)=(\S*)", ln)) for ln in text.splitlines()]
    return [j for j in jobs if j.get("WorkDir") == str(workdir)]


def queued_jobs(workdir: Path) -> list[str]:
    """Job ids squeue knows (pending, running or recently finished) for `workdir`."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%Z"], capture_output=True, text=True
    ).stdout
    return [i for i, _, wd in (ln.partition("|") for ln in out.splitlines()) if wd == str(workdir)]


def run_json(run_efflab, repo: Path, *args: str) -> tuple[int, dict, str]:
    # host runtime: these tests are about scheduling; SLURM nodes rarely run Docker
    cmd = ["run", "demo", "--quick", "--json", "-q", "--runtime", "host", *args]
    proc = run_efflab(repo, *cmd, timeout=900)
    try:
        data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        data = {}
    return proc.returncode, data, proc.stdout + proc.stderr


def test_slurm_run_matches_local_run(slurm_cluster: Path, tiny_repo: Path, run_efflab) -> None:
    local_repo = tiny_repo.parent / "local"
    shutil.copytree(tiny_repo, local_repo, symlinks=True)

    t0 = time.monotonic()
    rc, on_slurm, out = run_json(run_efflab, tiny_repo, "--profile", "slurm")
    t_slurm = time.monotonic() - t0
    assert rc == 0, out
    t0 = time.monotonic()
    rc, local, out = run_json(run_efflab, local_repo, "--profile", "local")
    t_local = time.monotonic() - t0
    assert rc == 0, out
    print(f"\ndemo --quick: slurm {t_slurm:.1f} s, local {t_local:.1f} s")

    # every job went through sbatch: gen x2 + square x4, all completed, none local
    jobs = completed_jobs(slurm_cluster, tiny_repo)
    assert on_slurm["demo"]["jobs_run"] == 6
    assert len(jobs) == 6, jobs
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert completed_jobs(slurm_cluster, local_repo) == [] and queued_jobs(local_repo) == []

    # same keys, same rows
    def manifest(repo: Path) -> dict:
        return json.loads((repo / "results/demo/tables/v1/manifest.json").read_text())

    assert manifest(tiny_repo)["keys"] == manifest(local_repo)["keys"]
    rows_s, rows_l = on_slurm["demo"]["rows"], local["demo"]["rows"]
    stats = {"n", "mean", "median", "std", "min", "max", "ci95_low", "ci95_high"}
    ident = [k for k in rows_l[0] if k not in stats]
    key = lambda r: tuple(json.dumps(r[k]) for k in ident)  # noqa: E731
    assert sorted(map(key, rows_s)) == sorted(map(key, rows_l))
    by_key = {key(r): r for r in rows_l}
    for r in rows_s:
        lr = by_key[key(r)]
        assert r["n"] == lr["n"]
        for stat in ("mean", "median", "min", "max"):
            if r["unit"] in TIME_UNITS:  # timing: within noise of the local run
                assert math.isclose(r[stat], lr[stat], rel_tol=0.5, abs_tol=0.25), (r, lr)
            else:  # deterministic: identical
                assert r[stat] == lr[stat], (r, lr)

    # a second run is all cached: nothing is submitted again
    rc, again, out = run_json(run_efflab, tiny_repo, "--profile", "slurm")
    assert rc == 0 and again["demo"]["jobs_run"] == 0, out
    assert len(completed_jobs(slurm_cluster, tiny_repo)) == 6


def test_slurm_failed_job_becomes_failed_record(
    slurm_cluster: Path, tiny_repo: Path, run_efflab
) -> None:
    rc, data, out = run_json(
        run_efflab, tiny_repo, "--profile", "slurm", "--set", "n=2", "--set", "scale=1.0",
        "--set", "fail=true",
    )  # fmt: skip
    assert rc == 1, out
    assert "asked to fail" in out
    states = sorted(j["JobState"] for j in completed_jobs(slurm_cluster, tiny_repo))
    assert states == ["COMPLETED", "FAILED"], states
    assert list((tiny_repo / "results/demo/runs").glob("*.failed.json"))


@pytest.mark.parametrize(
    ("line", "field"),
    [("mem_mb: 100000000", "mem_mb"), ("runtime_min: 100000", "runtime_min"),
     ("cpus: 4096", "cpus"), ("gpus: 1", "gpus")],
)  # fmt: skip
def test_slurm_refuses_jobs_larger_than_partition(
    slurm_cluster: Path, tiny_repo: Path, run_efflab, line: str, field: str
) -> None:
    meta = tiny_repo / "scripts/square/meta.yaml"
    meta.write_text(meta.read_text().replace("resources:\n", f"resources:\n  {line}\n"))
    before = slurm_cluster.read_text() if slurm_cluster.exists() else ""
    proc = run_efflab(
        tiny_repo, "run", "demo", "--quick", "--profile", "slurm", "--runtime", "host", "-q"
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(meta) in proc.stderr and f"$.resources.{field}" in proc.stderr, proc.stderr
    assert "partition" in proc.stderr
    # nothing submitted: not the gen deps either
    assert queued_jobs(tiny_repo) == []
    assert (slurm_cluster.read_text() if slurm_cluster.exists() else "") == before


def test_cancelling_a_slurm_run_cancels_its_jobs(slurm_cluster: Path, tiny_repo: Path) -> None:
    """Ctrl-C on `efflab run --profile slurm` leaves no job queued or running."""
    import signal
    import sys

    cmd = [sys.executable, "-m", "efflab", "--repo", str(tiny_repo), "run", "demo", "--quick"]
    cmd += ["--profile", "slurm", "--runtime", "host", "--set", "sleep_s=600", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        while not any("square" in c for _, c in active_jobs(tiny_repo)):  # a long job is queued
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
            time.sleep(1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "cancelled" in out, out
    deadline = time.monotonic() + 30
    while active_jobs(tiny_repo) and time.monotonic() < deadline:
        time.sleep(1)
    assert active_jobs(tiny_repo) == []
    assert "CANCELLED" in {j["JobState"] for j in completed_jobs(slurm_cluster, tiny_repo)}


def active_jobs(workdir: Path) -> list[tuple[str, str]]:
    """(job id, comment) of pending or running jobs whose working directory is `workdir`."""
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i|%Z|%k"], capture_output=True, text=True
    ).stdout
    rows = [ln.split("|", 2) for ln in out.splitlines() if ln.count("|") >= 2]
    return [(i, c) for i, wd, c in rows if wd == str(workdir)]
