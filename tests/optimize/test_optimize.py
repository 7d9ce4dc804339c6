"""`efflab optimize` end to end on a real throwaway project (Snakemake, the host
runtime, run records): a known optimum is found, constraints exclude trials, a killed
study resumes without repeating a finished trial, measured trials are cache hits, and
bad input exits 2 naming the option."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import efflab
from optimize.quad_project import make_quad_repo

from efflab.optimize.trials import median_interval

HOST = ["--runtime", "host", "-q"]


@pytest.fixture
def quad(tmp_path: Path) -> Path:
    return make_quad_repo(tmp_path / "proj")


def _outputs_mtimes(repo: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (repo / "artifacts").glob("*/*/outputs.json")}


def _summary(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_finds_known_optimum_and_writes_results(quad: Path):
    s = _summary(
        efflab(
            quad,
            "optimize",
            "quad",
            "--objective",
            "loss:min",
            "--trials",
            "12",
            "--seed",
            "1",
            "--cores",
            "2",
            "--json",
            *HOST,
        )  # fmt: skip
    )
    assert s["space_size"] == 27  # x 0..8 (schema range, wider than the grid) x kind enum
    assert [t["params"] for t in s["front"]] == [{"x": 5, "kind": "b"}]
    assert s["front"][0]["objectives"]["loss"]["median"] == 0.0
    assert s["best_runs"] == ["efflab run quad --set x=5 --set kind=b"]
    assert s["trials_finished"] == 12 and s["trials_failed"] == 0
    folder = Path(s["folder"])
    assert (folder / "trials.png").stat().st_size > 1000
    assert len((folder / "trials.csv").read_text().splitlines()) == 13
    table = efflab(quad, "results", "table", "quad/optimize", "--format", "json", check=True)
    rows = json.loads(table.stdout)
    assert {(r["x"], r["kind"], r["metric"]) for r in rows} == {(5, "b", "loss"), (5, "b", "cost")}
    # the printed line reproduces the optimum through the ordinary `run`
    run = efflab(quad, "run", "quad", "--set", "x=5", "--set", "kind=b", "--json", *HOST)
    out = json.loads(run.stdout)["quad"]
    assert out["jobs_run"] == 0  # the optimum's repetitions were measured by the study
    assert {r["metric"]: r["median"] for r in out["rows"]}["loss"] == 0.0


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_yaml_block_and_constraint_exclude_infeasible(quad: Path):
    s = _summary(efflab(quad, "optimize", "quad-yaml", "--cores", "3", "--json", *HOST))
    assert s["constraints"] == ["cost<=4"] and s["trials_finished"] == 14
    for t in s["trials"]:
        assert 2 <= t["params"]["x"] <= 6  # the search: block narrows the schema's 0..8
        assert t["feasible"] == (t["params"]["x"] <= 4)
    assert any(not t["feasible"] for t in s["trials"])  # the constraint had work to do
    assert [t["params"] for t in s["front"]] == [{"x": 4, "kind": "b"}]  # not x=5 (cost 5)


def test_cache_hit_is_not_rerun(quad: Path):
    efflab(quad, "run", "quad", *HOST, check=True)  # the grid: x in {0, 4}, kind in {a, b}
    before = _outputs_mtimes(quad)
    s = _summary(
        efflab(
            quad,
            "optimize",
            "quad",
            "--objective",
            "loss:min",
            "--search",
            "x=0,4",
            "--search",
            "kind=a,b",
            "--trials",
            "4",
            "--sampler",
            "random",
            "--json",
            *HOST,
        )  # fmt: skip
    )
    assert s["jobs_run_now"] == 0
    assert all(t["cached"] for t in s["trials"])
    assert _outputs_mtimes(quad) == before
    assert [t["params"] for t in s["front"]] == [{"x": 4, "kind": "b"}]


def _finished_trials(db: Path) -> int:
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0]
    except sqlite3.OperationalError:  # the file exists, Optuna has not made its tables yet
        return 0


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_resume_after_kill_repeats_nothing(quad: Path):
    args = ["optimize", "quad", "--objective", "loss:min", "--trials", "6", "--seed", "2",
            "--set", "sleep_s=1.0", *HOST]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "efflab", "--repo", str(quad), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    db = quad / "results/quad/optimize/studies/1/study.db"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if db.exists() and _finished_trials(db) >= 2:
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the study did not finish 2 trials in 300 s")
    os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no goodbye
    proc.wait()
    time.sleep(3)  # let the orphaned Snakemake job (if any) finish or die
    done_before = _finished_trials(db)
    assert done_before < 6
    before = _outputs_mtimes(quad)
    s = _summary(efflab(quad, *args, "--resume", "--json"))
    assert s["study"] == 1 and s["resumed"]
    assert s["trials_finished"] == 6
    assert s["trials_run_now"] == 6 - done_before  # no finished trial asked again
    after = _outputs_mtimes(quad)
    assert {k: after[k] for k in before} == before  # nothing measured before ran again
    # and a resume of a finished study runs nothing at all
    again = _summary(efflab(quad, *args, "--resume", "--json"))
    assert again["trials_run_now"] == 0 and again["jobs_run_now"] == 0


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--objective", "loss:up"], "--objective: $[0]"),
        (["--objective", "nosuch:min"], "--objective: $[0]"),
        (["--objective", "loss:min", "--constraint", "cost=>3"], "--constraint: $[0]"),
        (["--objective", "loss:min", "--constraint", "cost<=x"], "--constraint: $[0]"),
        (["--objective", "loss:min", "--search", "x=0..100"], "--search: $.x.high"),
        (["--objective", "loss:min", "--search", "kind=a,z"], "--search: $.kind[1]"),
        (["--objective", "loss:min", "--search", "nosuch=1,2"], "--search: $.nosuch"),
        (["--objective", "loss:min", "--resume"], "--resume: expected"),
    ],
)
def test_bad_input_exits_2_naming_the_option(quad: Path, extra: list[str], option: str):
    proc = efflab(quad, "optimize", "quad", *extra, *HOST)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and option in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (quad / "results/quad/optimize/studies").exists()  # nothing written


def test_median_interval_is_the_tables_bootstrap():
    lo, hi, cov = median_interval([3.0, 1.0, 2.0])  # odd n: exact, the range at n = 3
    assert (lo, hi) == (1.0, 3.0) and cov == 0.95
    lo, hi, _ = median_interval([float(x) for x in range(10, 0, -1)])
    assert 1.0 <= lo < 5.5 < hi <= 10.0
    assert median_interval([4.0]) == (4.0, 4.0, 0.0)


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_contended_timing_trial_is_remeasured_before_optuna_hears(quad: Path, monkeypatch):
    monkeypatch.setenv("EFFLAB_QUIET_WAIT_S", "0")  # the rounds themselves, whatever the load
    meta = quad / "scripts/quad/meta.yaml"
    meta.write_text(
        meta.read_text().replace(
            '    cost: {unit: "1", better: lower}\n',
            '    cost: {unit: "1", better: lower}\n    wall_ms: {unit: ms, better: lower}\n',
        )
    )
    run_py = quad / "scripts/quad/run.py"
    run_py.write_text(
        run_py.read_text()
        .replace("def run(ctx):\n", "def run(ctx):\n    t0 = time.perf_counter()\n")
        .replace(
            '"cost": float(x)}', '"cost": float(x), "wall_ms": (time.perf_counter() - t0) * 1e3}'
        )
    )
    one = ["--search", "x=5", "--search", "kind=b", "--trials", "1", "--json", *HOST]
    efflab(quad, "run", "quad", "--set", "x=5", "--set", "kind=b", *HOST, check=True)
    outs = sorted((quad / "artifacts/quad").glob("*/outputs.json"))
    assert len(outs) == 2  # two repetitions
    # the job side measured it; say it was contended, with a timing no real run gives
    first = json.loads(outs[0].read_text())
    assert "others_cores" in first["contention"]
    first["contention"]["contended"] = True
    first["metrics"]["wall_ms"] = 1e9
    outs[0].write_text(json.dumps(first))
    (outs[0].parent / ".outputs.done.json").unlink(missing_ok=True)
    rec_file = quad / "results/quad/runs" / f"{first['key']}.json"
    rec = json.loads(rec_file.read_text())
    rec["contended"], rec["metrics"]["wall_ms"]["value"] = True, 1e9
    rec_file.write_text(json.dumps(rec))
    # a non-timing objective takes the contended record as it is
    s = _summary(efflab(quad, "optimize", "quad", "--objective", "loss:min", *one))
    assert s["trials_remeasured"] == 0 and s["jobs_run_now"] == 0
    assert not list(outs[0].parent.glob("outputs.contended-*.json"))
    # a timing objective: measured again before the trial is told to Optuna
    s = _summary(efflab(quad, "optimize", "quad", "--objective", "wall_ms:min", *one))
    (t,) = s["trials"]
    assert t["remeasured"] >= 1 and s["trials_remeasured"] == 1 and s["jobs_run_now"] >= 1
    assert not t["cached"]
    aside = sorted(outs[0].parent.glob("outputs.contended-*.json"))
    assert 1 <= len(aside) <= 2  # bounded rounds
    assert json.loads(aside[0].read_text())["metrics"]["wall_ms"] == 1e9
    assert outs[0].exists() and json.loads(outs[0].read_text())["metrics"]["wall_ms"] < 1e6
    assert max(t["objectives"]["wall_ms"]["values"]) < 1e6  # what Optuna was told
    with sqlite3.connect(Path(s["folder"]) / "study.db") as c:  # Optuna's own storage
        told = [v for (v,) in c.execute("SELECT value FROM trial_values")]
    assert len(told) == 1 and told[0] < 1e6
