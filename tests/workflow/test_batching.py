"""Batches of short invocations (efflab.workflow.batching): how they are cut, and a
real local run through Snakemake's `efflab_batch` rule giving the unbatched table.
The SLURM side (fewer submissions, same table) is tests/workflow/test_slurm_batching.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from efflab.workflow import batching


def inv(key: str, deps: tuple[str, ...] = (), **res) -> dict:
    return {"key": key, "alias": "a", "deps": {d: {"key": d, "alias": "a"} for d in deps},
            "resources": res}  # fmt: skip


def test_batches_are_sized_from_expected_seconds() -> None:
    invs = [inv(f"k{i}") for i in range(5)] + [inv("slow", expected_s=30)]
    got = batching.plan(invs, 60)
    # the longest member (30 s) sizes its group: two per 60 s batch
    assert [len(b.members) for b in got] == [2, 2, 2]
    assert {b.group for b in got} == {batching.BATCH_GROUP}
    assert batching.plan([inv("a", expected_s=90), inv("b", expected_s=90)], 60) == []  # long
    assert batching.plan(invs, None) == []  # no batching asked, no script group
    grouped = batching.plan([inv("g1", group="fpga"), inv("g2", group="fpga")], None)
    assert [b.group for b in grouped] == ["fpga"] and grouped[0].capacity == 60


def test_members_keep_dependency_order_and_batches_never_wait_on_each_other() -> None:
    # x (batched) -> y (not batched: too long) -> z (batched): z cannot share x's batch,
    # or that batch would wait on y, which waits on it
    invs = [inv("z", ("y",)), inv("y", ("x",), expected_s=500), inv("x"), inv("w", ("x",))]
    got = batching.plan(invs, 60)
    where = {m["key"]: i for i, b in enumerate(got) for m in b.members}
    assert where["x"] == where["w"]  # a dep inside the batch: run in order
    keys = [m["key"] for m in got[where["x"]].members]
    assert keys.index("x") < keys.index("w")
    assert "z" not in where or where["z"] != where["x"]
    assert "y" not in where


def test_local_batched_run_matches_unbatched_and_runs_in_few_jobs(tiny_repo: Path, run_efflab) -> None:  # fmt: skip
    plain_repo = tiny_repo.parent / "plain"
    shutil.copytree(tiny_repo, plain_repo, symlinks=True)
    # 4 points x (gen + square), 10 s expected each: 25 s batches hold two members
    batched = run_efflab(tiny_repo, "run", "demo", "--quick", "--json", "--batch-seconds", "25")
    assert batched.returncode == 0, batched.stderr
    plain = run_efflab(plain_repo, "run", "demo", "--quick", "--json")
    assert plain.returncode == 0, plain.stderr
    got, want = json.loads(batched.stdout)["demo"], json.loads(plain.stdout)["demo"]
    assert got["jobs_run"] == want["jobs_run"] == 6  # gen n=2,3 are shared by 2 points each
    sums = [r for r in got["rows"] if r["metric"] == "sumsq"]  # wall_s: a timing
    assert sums == [r for r in want["rows"] if r["metric"] == "sumsq"] and len(sums) == 4
    assert not list((tiny_repo / batching.FOLDER).iterdir())  # the run's batch files went
    log = max((tiny_repo / ".efflab" / "logs").glob("*.snakemake.log")).read_text()
    # three batches of two members, each one job, and no job of its own for any member
    assert log.count("rule efflab_batch:") == 3 and "rule efflab_invocation:" not in log
