"""Short jobs batched on SLURM (`efflab run --batch-seconds`, efflab.workflow.batching).

A grouped run must give the local run's table (deterministic metrics identical) while
submitting fewer SLURM jobs; SLURM's job-completion log counts the submissions.
Timings are printed for the record (the goal, SLURM <= 3x local, lives in
bench/bench_scale.py), not asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import write
from test_slurm import TIME_UNITS, completed_jobs, run_json, slurm_cluster  # noqa: F401

pytestmark = pytest.mark.slurm


def deterministic_rows(rows: list[dict]) -> list[tuple]:
    keep = ("metric", "unit", "n", "mean", "median", "min", "max")
    out = []
    for r in rows:
        if r["unit"] not in TIME_UNITS:
            params = tuple(json.dumps(r[k]) for k in r if k not in batching_stats())
            out.append((params, *(r[k] for k in keep)))
    return sorted(out)


def batching_stats() -> set[str]:
    return {"n", "mean", "median", "std", "min", "max", "ci95_low", "ci95_high"}


def test_grouped_slurm_run_matches_local_with_fewer_jobs(
    slurm_cluster: Path,  # noqa: F811
    tiny_repo: Path,
    run_efflab,
) -> None:
    local_repo = tiny_repo.parent / "local"
    shutil.copytree(tiny_repo, local_repo, symlinks=True)
    t0 = time.monotonic()
    rc, grouped, out = run_json(
        run_efflab, tiny_repo, "--profile", "slurm", "--batch-seconds", "60"
    )
    t_slurm = time.monotonic() - t0
    assert rc == 0, out
    rc, local, out = run_json(run_efflab, local_repo, "--profile", "local")
    assert rc == 0, out
    jobs = completed_jobs(slurm_cluster, tiny_repo)
    print(f"\ndemo --quick grouped: slurm {t_slurm:.1f} s in {len(jobs)} SLURM job(s)")
    assert grouped["demo"]["jobs_run"] == 6  # all six invocations ran...
    assert 1 <= len(jobs) < 6, jobs  # ...in fewer submissions
    assert {j["JobState"] for j in jobs} == {"COMPLETED"}
    assert deterministic_rows(grouped["demo"]["rows"]) == deterministic_rows(local["demo"]["rows"])


def test_fifty_trivial_invocations_batched_on_slurm(
    slurm_cluster: Path,  # noqa: F811
    tiny_repo: Path,
    run_efflab,
) -> None:
    write(
        tiny_repo / "workflows/experiments/fifty.yaml",
        "name: fifty\nscript: demo,gen\ngrid:\n  n: [" + ", ".join(map(str, range(1, 51))) + "]\n",
    )
    local_repo = tiny_repo.parent / "local50"
    shutil.copytree(tiny_repo, local_repo, symlinks=True)
    cmd = ["run", "fifty", "--json", "-q", "--runtime", "host", "--cores", "2"]
    t0 = time.monotonic()
    on_slurm = run_efflab(
        tiny_repo, *cmd, "--profile", "slurm", "--batch-seconds", "600", timeout=900
    )
    t_slurm = time.monotonic() - t0
    assert on_slurm.returncode == 0, on_slurm.stdout + on_slurm.stderr
    t0 = time.monotonic()
    local = run_efflab(local_repo, *cmd, "--profile", "local", timeout=900)
    t_local = time.monotonic() - t0
    assert local.returncode == 0, local.stderr
    jobs = completed_jobs(slurm_cluster, tiny_repo)
    print(f"\n50 trivial: slurm {t_slurm:.1f} s ({len(jobs)} SLURM jobs), local {t_local:.1f} s")
    assert len(jobs) == 1  # 50 components of expected 10 s fill one 600 s group job
    rows_s = json.loads(on_slurm.stdout)["fifty"]["rows"]
    assert rows_s == json.loads(local.stdout)["fifty"]["rows"]  # count is deterministic


def scontrol_spy(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """`scontrol` first on PATH (sbatch exports PATH into the job): logs whether its
    caller is a Snakemake that runs a submitted job (`--target-jobs`) or the submitting
    one, then runs the real scontrol. The SLURM plugin calls it when it is imported."""
    calls, bin_dir = tmp_path / "scontrol-calls.txt", tmp_path / "spy-bin"
    real = shutil.which("scontrol")
    write(
        bin_dir / "scontrol",
        "#!/bin/sh\n"
        "case \"$(tr '\\0' ' ' < /proc/$PPID/cmdline)\" in\n"
        f"  *--target-jobs*) echo nested >> {calls} ;;\n"
        f"  *) echo top >> {calls} ;;\n"
        "esac\n"
        f'exec {real} "$@"\n',
    ).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}, calls


def test_cluster_jobs_start_snakemake_without_the_slurm_plugin(
    slurm_cluster: Path,  # noqa: F811
    tiny_repo: Path,
    run_efflab,
    tmp_path: Path,
) -> None:
    """The Snakemakes inside a SLURM job (sbatch script, jobstep's srun) come through the
    launcher, which hides the SLURM plugin: no import, no `scontrol` probe there."""
    env, calls = scontrol_spy(tmp_path)
    control_repo = tiny_repo.parent / "control"
    shutil.copytree(tiny_repo, control_repo, symlinks=True)
    cmd = ["run", "demo", "--quick", "--json", "-q", "--runtime", "host"]
    cmd += ["--profile", "slurm", "--batch-seconds", "60"]
    off = {**env, "EFFLAB_SNAKEMAKE_NESTED": "off"}
    r = run_efflab(control_repo, *cmd, env=off, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nested" in calls.read_text().split()  # control: plain `-m snakemake` in the job
    calls.unlink()
    r = run_efflab(tiny_repo, *cmd, env=env, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = calls.read_text().split() if calls.exists() else []
    assert "nested" not in seen, seen
    assert json.loads(r.stdout)["demo"]["jobs_run"] == 6
