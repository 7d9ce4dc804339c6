"""What a night found: one Finding per judged (point, metric), the Night that holds them.

The summary, the dashboard, the history entry and bisect's JSON read these typed
objects; nothing here judges anything (see `regression`, `changepoints`, `night`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from efflab.nightly import changepoints as cpm
from efflab.nightly import regression as regress
from efflab.nightly.history import point_label


@dataclass
class Finding:
    """One judged (experiment, point, metric) of a night."""

    experiment: str
    point: dict[str, Any]
    group: str  # comparability key (script + resolved inputs), see `group_of`
    metric: str
    unit: str
    better: str
    verdict: str
    change: float
    baseline_median: float
    current_median: float
    p_worse: float
    p_worse_adj: float
    p_better: float
    p_better_adj: float
    n_baseline: int
    n_current: int
    baseline_nights: int
    method: str
    detectable: bool
    policy: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    alias: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    excluded_nights: list[int] = field(default_factory=list)
    reset: str = ""  # why the baseline was reset (an input changed), loud in the summary

    @property
    def label(self) -> str:
        return point_label(self.point)


@dataclass
class ExperimentOutcome:
    version: int | None = None
    new_version: bool = False
    jobs_run: int = 0
    keys: list[str] = field(default_factory=list)
    workload: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass
class Night:
    """Everything one `efflab nightly` produced; the summary and dashboard read this."""

    night: int
    run_id: str
    started: str
    suite: str
    correction: str
    git: dict[str, Any]
    ended: str = ""
    experiments: dict[str, ExperimentOutcome] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    change_points: list[cpm.ChangePoint] = field(default_factory=list)
    strict: bool = False  # underpowered and no-baseline fail the night
    dashboard: str = ""
    published: dict[str, Any] | None = None

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == regress.REGRESSION]

    @property
    def open_change_points(self) -> list[cpm.ChangePoint]:
        return [c for c in self.change_points if c.open]

    @property
    def not_judged(self) -> list[Finding]:
        bad = (regress.UNDERPOWERED, regress.NO_BASELINE)
        return [f for f in self.findings if f.verdict in bad]

    @property
    def failures(self) -> list[str]:
        return [m for o in self.experiments.values() for m in o.failures]

    @property
    def exit_code(self) -> int:
        strict_fail = self.strict and bool(self.not_judged)
        return (
            1 if self.regressions or self.failures or self.open_change_points or strict_fail else 0
        )

    def to_json(self) -> dict[str, Any]:
        counts = {v: 0 for v in regress.VERDICTS}
        for f in self.findings:
            counts[f.verdict] += 1
        return finite(
            {
                "night": self.night,
                "run_id": self.run_id,
                "started": self.started,
                "ended": self.ended,
                "suite": self.suite,
                "correction": self.correction,
                "git": self.git,
                "exit_code": self.exit_code,
                "strict": self.strict,
                "counts": counts,
                "open_change_points": len(self.open_change_points),
                "undetectable": sum(1 for f in self.findings if not f.detectable),
                "failures": self.failures,
                "experiments": {k: asdict(v) for k, v in self.experiments.items()},
                "findings": [asdict(f) for f in self.findings],
                "change_points": [asdict(c) for c in self.change_points],
                "dashboard": self.dashboard,
                "published": self.published,
            }
        )


def finite(data: Any) -> Any:
    """NaN/inf -> None, recursively: summaries must be strict JSON for other tools."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data
