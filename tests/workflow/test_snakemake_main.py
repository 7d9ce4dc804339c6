"""The Snakemake launcher: local runs don't pay for SLURM (only the executor plugins a
run uses are seen), scheduler timers don't hold a finished Snakemake, and a cluster
run's status poll wakes when a job's outputs appear.

The SLURM executor plugin runs `scontrol show config` when it is imported; a fake
`scontrol` first on PATH records every call, so the tests see whether a Snakemake
process imported the plugin: plain `python -m snakemake` does (the control), a local
`efflab run` must not.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import efflab, write

from efflab.workflow.snakemake_main import WAKE_BACKOFF_S, WakeSchedule, keeps

HAS_SLURM_PLUGIN = importlib.util.find_spec("snakemake_executor_plugin_slurm") is not None


def fake_scontrol(tmp_path: Path) -> tuple[dict[str, str], Path]:
    calls = tmp_path / "scontrol-calls.txt"
    bin_dir = tmp_path / "bin"
    write(bin_dir / "scontrol", f'#!/bin/sh\necho "$*" >> {calls}\nexit 1\n').chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, calls


def test_keeps_only_the_named_executors() -> None:
    slurm = {"slurm"}
    assert keeps("snakemake_executor_plugin_slurm", slurm)
    assert keeps("snakemake_executor_plugin_slurm_jobstep", slurm)
    assert not keeps("snakemake_executor_plugin_slurm", {"local"})
    assert not keeps("snakemake_executor_plugin_slurmish", slurm)
    assert keeps("snakemake_storage_plugin_s3", {"local"})  # only executors are hidden
    assert keeps("numpy", {"local"})
    nested = {"local", "slurm_jobstep"}  # what a SLURM job's own Snakemakes keep
    assert keeps("snakemake_executor_plugin_slurm_jobstep", nested)
    assert not keeps("snakemake_executor_plugin_slurm", nested)


def modules_seen(tmp_path: Path, executors: str, env: dict[str, str]) -> set[str]:
    """Executor plugin modules loaded in a Snakemake process started the adapter's way."""
    wf = tmp_path / f"wf-{executors}"
    write(
        wf / "Snakefile",
        "import json, sys\n"
        "mods = sorted(m for m in sys.modules if m.startswith('snakemake_executor_plugin'))\n"
        "open('mods.json', 'w').write(json.dumps(mods))\n"
        "rule all:\n    output: 'x'\n    shell: 'touch {output}'\n",
    )
    cmd = [sys.executable, "-m", "efflab.workflow.snakemake_main", "--executors", executors]
    cmd += ["--", "--cores", "1", "-q", "--profile", "none"]
    subprocess.run(cmd, cwd=wf, env={**os.environ, **env}, check=True, capture_output=True)
    return set(json.loads((wf / "mods.json").read_text()))


@pytest.mark.skipif(not HAS_SLURM_PLUGIN, reason="snakemake-executor-plugin-slurm not installed")
def test_plain_snakemake_probes_slurm_but_a_local_efflab_run_does_not(
    tmp_path: Path, tiny_repo: Path
) -> None:
    env, calls = fake_scontrol(tmp_path)
    # control: plain Snakemake imports the plugin, which asks scontrol at import
    subprocess.run(
        [sys.executable, "-m", "snakemake", "--version"], env={**os.environ, **env}, check=True
    )
    assert "show config" in calls.read_text()
    calls.unlink()

    assert "snakemake_executor_plugin_slurm" not in modules_seen(tmp_path, "local", env)
    assert not calls.exists()
    assert "snakemake_executor_plugin_slurm" in modules_seen(tmp_path, "slurm", env)
    calls.unlink()

    r = efflab(tiny_repo, "run", "demo", "--quick", "--json", env=env, check=True)
    assert json.loads(r.stdout)["demo"]["jobs_run"] == 6
    assert not calls.exists(), calls.read_text()


def timers_at_success(tmp_path: Path, name: str, env: dict[str, str]) -> list[bool]:
    """`daemon` of every scheduler timer alive when a real local Snakemake (started the
    adapter's way) finishes its workflow; a 5 s rate-limiter timespan keeps them alive."""
    wf = tmp_path / name
    write(
        wf / "Snakefile",
        "import json, threading\n"
        "onsuccess:\n"
        "    ts = [t.daemon for t in threading.enumerate() if isinstance(t, threading.Timer)]\n"
        "    open('timers.json', 'w').write(json.dumps(ts))\n"
        "rule all:\n    output: 'x'\n    shell: 'touch {output}'\n",
    )
    cmd = [sys.executable, "-m", "efflab.workflow.snakemake_main", "--executors", "local"]
    cmd += ["--", "--cores", "1", "-q", "--profile", "none", "--max-jobs-per-timespan", "100/5s"]
    subprocess.run(cmd, cwd=wf, env={**os.environ, **env}, check=True, capture_output=True)
    return json.loads((wf / "timers.json").read_text())


def test_scheduler_timers_do_not_hold_the_exit(tmp_path: Path) -> None:
    control = timers_at_success(tmp_path, "control", {"EFFLAB_SNAKEMAKE_TIMERS": "off"})
    assert False in control  # plain Snakemake: the exit would join this timer
    patched = timers_at_success(tmp_path, "patched", {})
    assert patched and all(patched)


def job_info(jid: str, *outputs: Path) -> SimpleNamespace:
    """What the wake schedule reads of Snakemake's SubmittedJobInfo."""
    return SimpleNamespace(
        external_jobid=jid, job=SimpleNamespace(output=[str(o) for o in outputs])
    )


def test_wake_schedule_backs_off_once_outputs_exist(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    jobs = [job_info("1", a, b), job_info("2", tmp_path / "never")]
    w = WakeSchedule()
    assert not w.due(jobs, 0.0)
    a.write_text("{}")
    assert not w.due(jobs, 1.0)  # one of two outputs: not finished
    b.write_text("{}")
    assert not w.due(jobs, 2.0)  # first seen: the first check waits a step
    assert not w.due(jobs, 2.0 + WAKE_BACKOFF_S[0] - 0.01)
    start = 2.0 + WAKE_BACKOFF_S[0]
    wakes = [t for i in range(400) if w.due(jobs, t := start + i * 0.05)]  # 20 s
    assert len(wakes) == len(WAKE_BACKOFF_S)  # then only the plugin's own schedule
    assert wakes[0] == start
    gaps = [y - x for x, y in zip(wakes, wakes[1:], strict=False)]
    assert gaps == pytest.approx(WAKE_BACKOFF_S[1:], abs=0.051)
    now = start + 20
    assert not w.due([jobs[1]], now)  # a job no longer active is forgotten
    assert "1" not in w.seen
