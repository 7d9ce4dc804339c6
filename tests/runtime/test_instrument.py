"""Deterministic work counts for real: scripts under Valgrind's cachegrind.

A run.py script (counted in a process of its own) and its run.sh dependency (the job
server's vfork path, bash and its children traced) ask for `instrument: cachegrind`;
their counts become metrics declared noiseless, repeat across repetitions within the
declared tolerance, and the instrument is part of the content key.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import efflab

from efflab.core.instruments import TOLERANCE
from efflab.plan.planner import plan_experiment

pytestmark = pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind not installed (tools/setup.sh installs it)"
)


def instrumented(repo: Path, alias: str) -> None:
    meta = repo / f"scripts/{alias}/meta.yaml"
    meta.write_text(meta.read_text().rstrip("\n") + "\n")
    text = meta.read_text()
    if "resources:" in text:
        text = text.replace("resources:\n", "resources:\n  instrument: cachegrind\n")
    else:
        text += "resources:\n  instrument: cachegrind\n"
    meta.write_text(text.replace("timeout_s: 60", "timeout_s: 600"))


def test_cachegrind_counts_are_noiseless_metrics(tiny_repo: Path) -> None:
    plain = plan_experiment(tiny_repo, "demo")
    for alias in ("gen", "square"):
        instrumented(tiny_repo, alias)
    counted = plan_experiment(tiny_repo, "demo")
    assert {p.key for p in counted.points}.isdisjoint(p.key for p in plain.points)
    meta = counted.script.metrics["instructions"]
    assert meta["noiseless"] is True and meta["tolerance"] == TOLERANCE
    r = efflab(tiny_repo, "run", "demo", "--runtime", "host", "--cores", "2",
               "--set", "n=2", "--set", "scale=1.0")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    recs = [json.loads(f.read_text()) for f in (tiny_repo / "results/demo/runs").glob("*.json")]
    assert len(recs) == 2
    counts = [rec["metrics"]["instructions"]["value"] for rec in recs]
    assert min(counts) > 1e7  # the interpreter's start-up alone is ~10^8
    assert abs(counts[0] - counts[1]) / min(counts) < TOLERANCE
    for rec in recs:
        assert rec["metrics"]["instructions"]["unit"] == "instructions"
        assert rec["metrics"]["d1_misses"]["value"] > 0 and rec["metrics"]["ll_misses"]["value"] > 0
        assert rec["metrics"]["sumsq"]["value"] == 5.0  # the script's own metric still there
    (gen,) = [
        json.loads(f.read_text()) for f in (tiny_repo / "artifacts/gen").glob("*/outputs.json")
    ]
    assert gen["instrument"] == "cachegrind" and gen["metrics"]["instructions"] > 1e5
