"""Local runs don't pay for SLURM: the adapter's Snakemake sees only its executor plugin.

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

import pytest
from conftest import efflab, write

from efflab.workflow.snakemake_main import keeps

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
