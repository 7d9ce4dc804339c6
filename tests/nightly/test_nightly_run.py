"""Night bookkeeping without running anything: exit codes, summary order, the lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from efflab.core import layout
from efflab.core.errors import RunFailed
from efflab.core.locks import FileLock
from efflab.nightly import dashboard, suite
from efflab.nightly import findings as fnd
from efflab.nightly import night as nightly
from efflab.nightly import regression as regress


def finding(verdict: str, metric: str, change: float) -> fnd.Finding:
    return fnd.Finding(
        experiment="exp", point={"size": 1}, group="g", metric=metric, unit="ms",
        better="lower", verdict=verdict, change=change, baseline_median=10.0,
        current_median=10.0 * (1 + change), p_worse=0.001, p_worse_adj=0.01, p_better=1.0,
        p_better_adj=1.0, n_baseline=15, n_current=3, baseline_nights=5,
        method="mann-whitney-exact", detectable=True, policy={},
    )  # fmt: skip


def night(*findings: fnd.Finding, failures: list[str] | None = None) -> fnd.Night:
    n = fnd.Night(night=3, run_id="r", started="s", suite="x", correction="holm", git={})
    n.experiments["exp"] = fnd.ExperimentOutcome(version=7, failures=failures or [])
    n.findings = list(findings)
    return n


def test_summary_lists_regressions_then_improvements_then_counts() -> None:
    n = night(
        finding(regress.IMPROVEMENT, "b", -0.3),
        finding(regress.UNCHANGED, "c", 0.01),
        finding(regress.REGRESSION, "a", 0.2),
    )
    out = dashboard.text(n)
    assert n.exit_code == 1
    assert out.index("REGRESSIONS") < out.index("IMPROVEMENTS") < out.index("UNCHANGED")
    assert "exp (table v7): 1 unchanged" in out and "+20.0%" in out


def test_improvements_alone_pass_and_failures_fail() -> None:
    assert night(finding(regress.IMPROVEMENT, "b", -0.3)).exit_code == 0
    failed = night(failures=["exp point {} rep 0: boom"])
    assert failed.exit_code == 1 and "FAILURES" in dashboard.text(failed)


def test_summary_json_is_strict_json() -> None:
    n = night(finding(regress.NO_BASELINE, "a", float("nan")))
    text = json.dumps(n.to_json(), allow_nan=False)  # raises on NaN/inf
    assert json.loads(text)["findings"][0]["change"] is None


def test_second_nightly_at_once_is_refused(tmp_path: Path) -> None:
    s = suite.Suite(file=tmp_path / "s.yaml", name="s", description="", entries=[])
    layout.nightly_dir(tmp_path).mkdir(parents=True)
    with FileLock(layout.nightly_dir(tmp_path) / ".lock", "nightly", "r0"):
        with pytest.raises(
            RunFailed, match=rf"another `efflab nightly` \(PID {os.getpid()}, run r0\)"
        ):
            nightly.run(tmp_path, s, run_id="r", plans=[])
    assert not layout.history_file(tmp_path).exists()
