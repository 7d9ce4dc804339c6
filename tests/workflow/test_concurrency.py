"""Two efflab runs at once, for real: same experiment (the second waits, then finds
everything cached; or, with --no-wait, is refused naming the holder) and two
experiments sharing dependencies (a shared step runs once). Each script execution is
counted in exec.log, and the latest table must be complete (every point n=1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reliability_helpers import (
    EXPECTED_SUMSQ,
    counting_repo,
    executions,
    start,
    sumsq_table,
    wait_until,
)

RUN = ("run", "demo", "--quick", "--runtime", "host", "--json", "-q", "--cores", "2")


@pytest.mark.parametrize("trial", range(2))
def test_two_runs_of_one_experiment_each_job_runs_once(tmp_path: Path, trial: int) -> None:
    repo = counting_repo(tmp_path / "proj")
    a = start(repo, *RUN, "--set", "sleep_s=1.5")
    # the second starts while the first is running jobs
    assert wait_until(lambda: executions(repo), 120)
    b = start(repo, *RUN, "--set", "sleep_s=1.5")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], outs
    ra, rb = (json.loads(o)["demo"] for o, _ in outs)
    assert sorted(executions(repo)) == sorted(
        ["gen 2", "gen 3", "square 2 1.0", "square 2 2.0", "square 3 1.0", "square 3 2.0"]
    )
    assert ra["jobs_run"] + rb["jobs_run"] == 6 and 0 in (ra["jobs_run"], rb["jobs_run"])
    assert "waiting for PID" in outs[1][1]
    assert ra["version"] == rb["version"] == 1  # same content: no second version
    assert sumsq_table(repo) == {k: (1, v) for k, v in EXPECTED_SUMSQ.items()}


def test_no_wait_refuses_with_the_holders_pid(tmp_path: Path) -> None:
    repo = counting_repo(tmp_path / "proj")
    a = start(repo, *RUN, "--set", "sleep_s=3")
    assert wait_until(lambda: executions(repo), 120)
    b = start(repo, *RUN, "--set", "sleep_s=3", "--no-wait")
    _, err = b.communicate(timeout=120)
    assert b.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"PID {a.pid}" in lines[0] and "demo.lock" in lines[0], err
    assert "Traceback" not in err
    out, err_a = a.communicate(timeout=300)
    assert a.returncode == 0, err_a
    assert sumsq_table(repo) == {k: (1, v) for k, v in EXPECTED_SUMSQ.items()}


def test_two_experiments_sharing_deps_run_each_shared_step_once(tmp_path: Path) -> None:
    repo = counting_repo(tmp_path / "proj")
    (repo / "workflows/experiments/other.yaml").write_text(
        "name: other\nscript: demo,square\ngrid: {n: [2, 3]}\ninputs: {scale: 3.0, sleep_s: 0.5}\n"
    )
    a = start(repo, *RUN, "--set", "sleep_s=0.5")
    b = start(repo, "run", "other", "--runtime", "host", "--json", "-q", "--cores", "2")
    outs = [p.communicate(timeout=300) for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], outs
    ran = executions(repo)
    assert ran.count("gen 2") == 1 and ran.count("gen 3") == 1, ran
    assert len(ran) == 2 + 4 + 2, ran
    assert sumsq_table(repo) == {k: (1, v) for k, v in EXPECTED_SUMSQ.items()}
    other = json.loads(outs[1][0])["other"]["rows"]
    assert sorted(r["median"] for r in other if r["metric"] == "sumsq") == [15.0, 42.0]
