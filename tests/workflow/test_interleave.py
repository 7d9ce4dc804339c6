"""Repetitions are interleaved: repetition r of every point starts before r+1 of any.

Real Snakemake on the tiny project (conftest.tiny_repo), with `square` made
timing-sensitive (exclusive: one job at a time), so the order jobs start in is the
order Snakemake was given them; the records' start times show it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import efflab, write

from efflab.core.errors import BadInput
from efflab.plan.planner import plan_experiment
from efflab.results import records
from efflab.workflow.pipeline import waves


def test_targets_reach_snakemake_in_repetition_order_in_one_run(tiny_repo: Path) -> None:
    p = plan_experiment(tiny_repo, "demo", False, None, "")
    order = [inv.repetition for wave in waves(list(p.targets)) for inv in wave]
    assert order == sorted(order) and set(order) == {0, 1}
    assert [len(w) for w in waves(list(p.targets))] == [8]  # one Snakemake run


@pytest.mark.slow  # over a minute on a shared 2-core machine
def test_snakemake_runs_every_point_of_a_repetition_before_the_next(tiny_repo: Path) -> None:
    meta = tiny_repo / "scripts/square/meta.yaml"
    write(
        meta, meta.read_text().replace("  timeout_s: 60\n", "  timeout_s: 60\n  exclusive: true\n")
    )
    exp = tiny_repo / "workflows/experiments/demo.yaml"
    write(exp, exp.read_text().replace("repetitions: 2\n", "repetitions: 3\n"))
    r = efflab(tiny_repo, "run", "demo", "--cores", "2", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    recs = sorted(records.load(tiny_repo, "demo"), key=lambda x: x.started)
    assert len(recs) == 12
    reps = [x.repetition for x in recs]
    assert reps == sorted(reps), reps  # 0,0,0,0,1,1,1,1,2,2,2,2
    # ...in one Snakemake run: its job selector keeps the order (the rule's priority)
    assert len(list((tiny_repo / ".snakemake/log").glob("*.snakemake.log"))) == 1
    # every timing record says whether the machine was contended while it ran
    assert all(x.contention and "others_cores" in x.contention for x in recs)


def test_large_waves_are_split_in_order(tiny_repo: Path, monkeypatch) -> None:
    p = plan_experiment(tiny_repo, "demo", False, None, "")
    todo = list(p.targets)
    split = waves(todo, limit=3)
    assert all(len(w) <= 3 for w in split) and len(split) > len(waves(todo, limit=0))
    assert [i for w in split for i in w] == [i for w in waves(todo, limit=0) for i in w]
    reps = [i.repetition for w in split for i in w]
    assert reps == sorted(reps)  # split in repetition order
    monkeypatch.setenv("EFFLAB_MAX_TARGETS", "3")
    assert waves(todo) == split
    monkeypatch.setenv("EFFLAB_MAX_TARGETS", "lots")
    with pytest.raises(BadInput, match="EFFLAB_MAX_TARGETS"):
        waves(todo)
