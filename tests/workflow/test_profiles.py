"""Profiles: found by name or path, validated, and checked against the cluster early.

No SLURM needed: sinfo parsing runs on captured output, and the end-to-end refusal
runs against a stand-in `sinfo` on PATH (the cluster is the environment here, not the
thing under test; tests/test_slurm.py covers the real one). The local profile runs
for real through Snakemake.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.workflow import snakemake_adapter as engine
from efflab.workflow.profiles import (
    NodeGroup,
    check_fits,
    gres_gpus,
    known,
    load,
    parse_sinfo,
    parse_slurm_time,
    plugin_installed,
    preflight,
    requested_partition,
    resolve,
)

REPO = Path(__file__).resolve().parents[2]
SLURM_PLUGIN = plugin_installed("executor", "slurm")

SINFO = """\
debug*|2|24105|2-00:00:00|(null)|up
gpu|64+|512000|infinite|gpu:a100:4(S:0-1)|up
long|16|64000|7-00:00:00|(null)|down
junk line
"""


def write_profile(folder: Path, text: str, name: str = "config.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder


def group(**kw) -> NodeGroup:
    base = dict(
        partition="debug", default=True, cpus=2, mem_mb=4000, max_runtime_min=60.0, gpus=0, up=True
    )
    return NodeGroup(**{**base, **kw})


def inv(**resources) -> dict:
    return {"key": "k", "alias": "a", "script_dir": "/x/scripts/a", "resources": resources}


# --- finding and validating profiles ---


def test_repo_profiles_resolve_and_name_their_executor() -> None:
    assert {"local", "slurm"} <= set(known(REPO))
    assert resolve(REPO, "local") == REPO / "workflows/profiles/local"
    local = load(REPO, "local")
    assert local.executor == "local" and local.file.name == "config.yaml"
    if SLURM_PLUGIN:
        slurm = load(REPO, "slurm")
        assert slurm.executor == "slurm"
        # squeue status: works without slurmdbd (plugin falls back to sacct itself)
        assert slurm.options["slurm-status-command"] == "squeue"


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(BadInput) as e:
        resolve(REPO, "nope")
    assert e.value.path == "$" and e.value.found == "nope"
    assert "local" in e.value.expected and "slurm" in e.value.expected


def test_profile_by_path_and_versioned_file(tmp_path: Path) -> None:
    site = write_profile(tmp_path / "site", "executor: local\njobs: 1\n")
    write_profile(site, "executor: local\njobs: 7\n", "config.v8+.yaml")
    write_profile(site, "executor: local\njobs: 9\n", "config.v99+.yaml")  # too new: ignored
    p = load(tmp_path, str(site))
    assert p.folder == site and p.file.name == "config.v8+.yaml" and p.options["jobs"] == 7
    with pytest.raises(BadInput):
        load(tmp_path, str(tmp_path / "missing"))


def test_profile_name_falls_back_to_snakemakes_user_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    site = write_profile(tmp_path / "cfg" / "snakemake" / "mysite", "executor: local\n")
    assert resolve(REPO, "mysite") == site
    # the project's own profiles come first
    write_profile(tmp_path / "cfg" / "snakemake" / "local", "executor: local\n")
    assert resolve(REPO, "local") == REPO / "workflows/profiles/local"


def test_executor_plugin_must_be_installed(tmp_path: Path) -> None:
    site = write_profile(tmp_path / "k8s", "executor: no-such-cloud\n")
    with pytest.raises(BadInput) as e:
        load(tmp_path, str(site))
    assert e.value.path == "$.executor" and e.value.file == site / "config.yaml"
    assert "snakemake-executor-plugin-no-such-cloud is not installed" in e.value.expected


def test_storage_plugin_must_be_installed(tmp_path: Path) -> None:
    site = write_profile(tmp_path / "s3", "executor: local\ndefault-storage-provider: nostore\n")
    with pytest.raises(BadInput) as e:
        load(tmp_path, str(site))
    assert e.value.path == "$.default-storage-provider"


def test_profile_must_be_a_mapping(tmp_path: Path) -> None:
    site = write_profile(tmp_path / "bad", "- executor\n")
    with pytest.raises(BadInput) as e:
        load(tmp_path, str(site))
    assert e.value.path == "$" and "mapping" in e.value.expected


def test_engine_passes_the_profile_folder_as_profile() -> None:
    cmd = engine.snakemake_cmd(REPO, ["t"], 1, profile=REPO / "workflows/profiles/slurm")
    i = cmd.index("--profile")
    assert cmd[i + 1] == str(REPO / "workflows/profiles/slurm")
    assert "--workflow-profile" not in cmd
    # no profile: an ambient $SNAKEMAKE_PROFILE must not apply silently
    plain = engine.snakemake_cmd(REPO, ["t"], 1)
    assert plain[plain.index("--profile") + 1] == "none"


# --- sinfo parsing and limits ---


def test_parse_sinfo() -> None:
    debug, gpu, long = parse_sinfo(SINFO)
    assert debug == NodeGroup("debug", True, 2, 24105, 2880.0, 0, True)
    assert gpu.partition == "gpu" and not gpu.default and gpu.cpus == 64 and gpu.gpus == 4
    assert math.isinf(gpu.max_runtime_min)
    assert long.max_runtime_min == 7 * 1440 and not long.up


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("infinite", math.inf), ("UNLIMITED", math.inf), ("30", 30), ("30:00", 30),
     ("1:30:00", 90), ("2-00:00:00", 2880), ("1-12", 1440 + 12), ("00:00:30", 0.5)],
)  # fmt: skip
def test_parse_slurm_time(text: str, minutes: float) -> None:
    assert parse_slurm_time(text) == minutes


@pytest.mark.parametrize(
    ("gres", "gpus"),
    [("(null)", 0), ("gpu:2", 2), ("gpu:a100:4(S:0-1)", 4), ("gpu", 1),
     ("gpu:a100:2,gpu:v100:1,shard:8", 3), ("gpu:a100:4(S:0-1),mps:100", 4)],
)  # fmt: skip
def test_gres_gpus(gres: str, gpus: int) -> None:
    assert gres_gpus(gres) == gpus


def test_requested_partition_in_both_profile_spellings(tmp_path: Path) -> None:
    def part(text: str) -> str | None:
        return requested_partition(load(tmp_path, str(write_profile(tmp_path / "p", text))))

    assert part("executor: local\n") is None
    assert part("executor: local\ndefault-resources: {slurm_partition: gpu}\n") == "gpu"
    assert part("executor: local\ndefault-resources: [\"slurm_partition='gpu'\"]\n") == "gpu"
    assert (
        part(
            "executor: local\ndefault-resources: {slurm_partition: a}\n"
            "set-resources: {efflab_invocation: {slurm_partition: b}}\n"
        )
        == "b"
    )


def test_check_fits_names_the_field_and_the_limit() -> None:
    groups = [group()]
    check_fits(inv(cpus=2, mem_mb=4000, runtime_min=60), groups, "debug")
    check_fits(inv(), groups, "debug")  # efflab.smk defaults: 1 cpu, 1000 MB, 30 min
    for res, field in [
        ({"mem_mb": 4001}, "mem_mb"),
        ({"cpus": 3}, "cpus"),
        ({"runtime_min": 61}, "runtime_min"),
        ({"gpus": 1}, "gpus"),
    ]:
        with pytest.raises(BadInput) as e:
            check_fits(inv(**res), groups, "debug")
        assert e.value.path == f"$.resources.{field}"
        assert e.value.file == Path("/x/scripts/a/meta.yaml")
        assert "partition 'debug'" in e.value.expected


def test_check_fits_needs_one_node_holding_everything() -> None:
    groups = [group(cpus=64, mem_mb=1000), group(cpus=2, mem_mb=500000)]
    check_fits(inv(cpus=64, mem_mb=1000), groups, "p")
    with pytest.raises(BadInput) as e:
        check_fits(inv(cpus=64, mem_mb=200000), groups, "p")
    assert e.value.path == "$.resources"


def test_exclusive_asks_for_the_submitting_machines_cores() -> None:
    cores = os.cpu_count() or 1
    check_fits(inv(exclusive=True), [group(cpus=cores)], "p")
    with pytest.raises(BadInput) as e:
        check_fits(inv(exclusive=True), [group(cpus=max(cores - 1, 0))], "p")
    assert e.value.path == "$.resources.exclusive"


def test_preflight_ignores_non_slurm_profiles(tmp_path: Path) -> None:
    # nothing to ask: no sinfo is run, nothing is read
    preflight(tmp_path, REPO / "workflows/profiles/local", [])


# --- through the CLI ---


def test_cli_unknown_profile_exits_2(tiny_repo: Path, run_efflab) -> None:
    proc = run_efflab(tiny_repo, "run", "demo", "--quick", "--profile", "nope")
    assert proc.returncode == 2
    assert "workflows/profiles: expected a profile name (local, slurm)" in proc.stderr


def test_cli_missing_executor_plugin_exits_2_before_running(
    tiny_repo: Path, run_efflab, tmp_path: Path
) -> None:
    site = write_profile(tmp_path / "k8s", "executor: no-such-cloud\n")
    proc = run_efflab(tiny_repo, "run", "demo", "--quick", "--profile", str(site))
    assert proc.returncode == 2 and "$.executor" in proc.stderr
    assert not list(tiny_repo.glob("artifacts/*/*/outputs.json"))


@pytest.mark.skipif(not SLURM_PLUGIN, reason="snakemake-executor-plugin-slurm not installed")
def test_cli_job_larger_than_partition_exits_2(tiny_repo: Path, run_efflab, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "sinfo"  # stands in for the cluster: 2 cores, 2000 MB
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'debug*|2|2000|1:00:00|(null)|up'\n")
    fake.chmod(0o755)
    meta = tiny_repo / "scripts/square/meta.yaml"
    meta.write_text(meta.read_text().replace("resources:\n", "resources:\n  mem_mb: 4000\n"))
    env = {"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"}
    proc = run_efflab(
        tiny_repo, "run", "demo", "--quick", "--profile", "slurm", "--runtime", "host", env=env
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{meta}: $.resources.mem_mb: expected at most 2000 MB" in proc.stderr
    assert "found 4000" in proc.stderr
    assert not list(tiny_repo.glob("artifacts/*/*/outputs.json"))


def test_cli_local_profile_runs(tiny_repo: Path, run_efflab) -> None:
    proc = run_efflab(
        tiny_repo, "run", "demo", "--quick", "--profile", "local", "--runtime", "host", "--json"
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)["demo"]
    assert data["jobs_run"] == 6 and not data["failures"]
    log = max((tiny_repo / ".efflab/logs").glob("*.snakemake.log")).read_text()
    assert "Using profile" in log and "workflows/profiles/local" in log
