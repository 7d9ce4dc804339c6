"""End to end on a tiny project: real Snakemake, real runner, records and tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import efflab, write

from efflab.core.specio import validate


def _records(repo: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((repo / "results/demo/runs").glob("*.json"))]


def test_run_records_table_and_noop_rerun(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "run", "demo", "--cores", "2", "--json", check=True)
    out = json.loads(r.stdout)["demo"]
    assert out["version"] == 1 and out["jobs_run"] == 10  # 8 points + 2 shared gen deps
    rows = {(row["param_n"], row["scale"], row["metric"]): row for row in out["rows"]}
    assert rows[(3, 2.0, "sumsq")]["median"] == 28.0 and rows[(3, 2.0, "sumsq")]["n"] == 2
    recs = _records(tiny_repo)
    assert len(recs) == 8
    for rec in recs:
        validate(rec, "run-record", None)
        assert rec["provenance"]["energy_method"].startswith("estimated:")
        assert rec["provenance"]["runtime"] == "host"
    # nothing changed: no job, same table version
    r2 = efflab(tiny_repo, "run", "demo", "--json", check=True)
    out2 = json.loads(r2.stdout)["demo"]
    assert out2["jobs_run"] == 0 and out2["version"] == 1 and not out2["new_version"]
    assert (tiny_repo / "results/demo/tables/v1/table.parquet").exists()


def test_one_changed_point_reruns_only_that_point(tiny_repo: Path) -> None:
    efflab(tiny_repo, "run", "demo", "--cores", "2", check=True)
    exp = tiny_repo / "workflows/experiments/demo.yaml"
    exp.write_text(exp.read_text().replace("scale: [1.0, 2.0]", "scale: [1.0, 3.0]"))
    out = json.loads(efflab(tiny_repo, "run", "demo", "--json", check=True).stdout)["demo"]
    assert out["jobs_run"] == 4  # 2 n-values x 2 repetitions at scale 3.0; deps cached
    assert out["version"] == 2 and out["new_version"]
    d = efflab(tiny_repo, "results", "diff", "demo", "1", "2", "--json", check=True)
    statuses = {row["status"] for row in json.loads(d.stdout)}
    assert statuses == {"both", "only in A", "only in B"}


def test_failed_script_gives_failed_record_and_exit_1(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "run", "demo", "--set", "fail=true", "--quick")
    assert r.returncode == 1
    assert "asked to fail" in r.stderr and "square" in r.stderr
    failed = list((tiny_repo / "results/demo/runs").glob("*.failed.json"))
    assert len(failed) == 4
    rec = json.loads(failed[0].read_text())
    validate(rec, "run-record", failed[0])
    assert rec["status"] == "failed" and "RuntimeError: asked to fail" in rec["log_tail"]


def test_timeout_kills_script(tiny_repo: Path) -> None:
    meta = tiny_repo / "scripts/square/meta.yaml"
    meta.write_text(meta.read_text().replace("timeout_s: 60", "timeout_s: 1"))
    t0 = time.monotonic()
    r = efflab(
        tiny_repo,
        "run",
        "demo",
        "--quick",
        "--set",
        "sleep_s=30",
        "--set",
        "n=2",
        "--set",
        "scale=1.0",
    )
    assert r.returncode == 1 and "timeout" in r.stderr
    assert time.monotonic() - t0 < 25


def test_cancellation_stops_jobs_and_leaves_no_output(tiny_repo: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "efflab",
            "--repo",
            str(tiny_repo),
            "run",
            "demo",
            "--quick",
            "--set",
            "sleep_s=60",
            "--cores",
            "2",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until a square job is running
        if list((tiny_repo / "artifacts/square").glob("*/stderr.log")):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert time.monotonic() - t0 < 15
    assert proc.returncode != 0
    assert not list((tiny_repo / "artifacts/square").glob("*/outputs.json"))
    out = subprocess.run(["pgrep", "-f", f"efflab.runtime.runner {tiny_repo}"], capture_output=True)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "efflab.runtime.runner artifacts/square" not in ps or str(tiny_repo) not in ps, out


def test_plain_snakemake_runs_the_same_dag(tiny_repo: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "2",
            "--config",
            "experiment=demo",
            "quick=1",
        ],
        cwd=tiny_repo,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(list((tiny_repo / "artifacts/square").glob("*/outputs.json"))) == 4
    # efflab sees the same keys (plain Snakemake's runtime is host): nothing left to run
    r = efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "--json", check=True)
    out = json.loads(r.stdout)
    assert out["demo"]["jobs_run"] == 0


def test_bad_input_exit_2_one_line_nothing_written(tiny_repo: Path) -> None:
    write(
        tiny_repo / "workflows/experiments/demo.yaml",
        "name: demo\nscript: demo,square\ngrid: {n: [1, 'two']}\n",
    )
    r = efflab(tiny_repo, "run", "demo")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "demo.yaml" in r.stderr and "$.grid.n[1]" in r.stderr
    assert not (tiny_repo / "artifacts").exists() and not (tiny_repo / "results").exists()


def test_plan_keys_identical_across_calls(tiny_repo: Path) -> None:
    a = efflab(tiny_repo, "plan", "demo", "--json", check=True).stdout
    b = efflab(tiny_repo, "plan", "demo", "--json", check=True).stdout
    assert a == b and len(json.loads(a)["points"]) == 8


def test_help_everywhere(tiny_repo: Path) -> None:
    for args in (["--help"], ["run", "--help"], ["plan", "--help"], ["results", "table", "--help"]):
        assert efflab(tiny_repo, *args).returncode == 0
    assert os.path.exists(tiny_repo / "Snakefile")
