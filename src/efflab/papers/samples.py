"""Per-repetition samples of an experiment: what a claim's interval is computed from.

A table row holds a point's median over repetitions; a confidence interval needs the
repetitions themselves, so verdicts read the run records (one per point and
repetition) of the plan that was run. The planned points come along: a selection
that covers a planned point without a successful record is an error (efflab.papers.
evaluate), never a silent drop from an `agg`.

`timing` says the experiment's measured script is timing-sensitive (its resources say
`exclusive`): a claim on it needs at least MIN_TIMING_REPS repetitions per point, even
in --quick, or its verdict is `inconclusive`. Metrics the script declares `noiseless`
(an accuracy of a fixed-seed model, a size, a MAC count) are not timings although the
script also measures some: a busy machine cannot move them, so contention never makes
a claim on them undecided.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from efflab.papers.claims import Scalar, Select, param_column, same_value
from efflab.plan.planner import Plan
from efflab.results.runrecord import RunRecord

MIN_TIMING_REPS = 3


@dataclass(frozen=True)
class PointSample:
    """One planned point's repetition values of one metric (empty: no successful record)."""

    params: dict[str, Any]
    values: np.ndarray
    unit: str
    contended: int = 0  # repetitions measured while the machine was contended

    @property
    def label(self) -> str:
        return json.dumps(self.params, sort_keys=True, default=str)


@dataclass
class Samples:
    """Successful records of one experiment as a long frame, plus its planned points."""

    experiment: str
    reps: pd.DataFrame  # params..., metric, unit, repetition, value, contended
    points: list[dict[str, Any]]
    timing: bool = False
    contended: int = 0  # records measured while the machine was contended
    remeasured: int = 0  # invocations re-measured because they were contended
    params: list[str] = field(default_factory=list)
    noiseless: frozenset[str] = frozenset()  # metrics no machine load can move

    def timing_metric(self, metric: str) -> bool:
        return self.timing and metric not in self.noiseless


def from_records(
    experiment: str,
    records: Iterable[RunRecord | dict[str, Any]],
    points: list[dict[str, Any]],
    params: list[str],
    timing: bool = False,
    noiseless: Iterable[str] = (),
) -> Samples:
    """Samples from run records: RunRecords, or recorded JSON (point, repetition,
    metrics, contended) as the claim fixtures hold them."""
    rows = []
    cols = [param_column(p) for p in params]
    n_cont = 0
    for rec in records:
        if isinstance(rec, RunRecord):
            point, rep, cont = rec.point, rec.repetition, bool(rec.contended)
            metrics = [(n, m.unit, m.value) for n, m in rec.metrics.items()]
        else:
            point, rep, cont = rec["point"], rec.get("repetition", 0), bool(rec.get("contended"))
            metrics = [(n, m["unit"], m["value"]) for n, m in rec["metrics"].items()]
        n_cont += cont
        base = [point.get(p) for p in params]
        for name, unit, value in metrics:
            rows.append((*base, name, unit, rep, float(value), cont))
    frame = pd.DataFrame.from_records(
        rows, columns=[*cols, "metric", "unit", "repetition", "value", "contended"]
    )
    uniq: list[dict[str, Any]] = []
    for pt in points:
        if pt not in uniq:
            uniq.append(pt)
    return Samples(experiment, frame, uniq, timing, n_cont, 0, list(params), frozenset(noiseless))


def noiseless_metrics(plan: Plan) -> frozenset[str]:
    """The measured script's metrics declared `noiseless: true` in its meta."""
    return frozenset(n for n, m in plan.script.metrics.items() if m.get("noiseless"))


def from_plan(plan: Plan, records: Iterable[RunRecord]) -> Samples:
    """Samples of a run plan: only records of its points; timing if any target is exclusive."""
    keys = {pt.key for pt in plan.points}
    recs = [r for r in records if r.key in keys and r.ok]
    timing = any(plan.invocations[pt.key].resources.get("exclusive") for pt in plan.points)
    return from_records(
        plan.experiment.name,
        recs,
        [pt.params for pt in plan.points],
        plan.param_names(),
        timing,
        noiseless_metrics(plan),
    )


def _matches(pt: dict[str, Any], where: Iterable[tuple[str, Any]]) -> bool:
    for k, v in where:
        wants = v if isinstance(v, tuple) else (v,)
        if k not in pt or not any(same_value(pt[k], w) for w in wants):
            return False
    return True


def planned(s: Samples, sel: Select, extra: tuple[tuple[str, Scalar], ...] = ()) -> list[dict]:
    """The planned points a selection covers (where + extra conditions)."""
    return [pt for pt in s.points if _matches(pt, (*sel.where, *extra))]


def point_sample(s: Samples, metric: str, pt: dict[str, Any]) -> PointSample:
    """Repetition values of `metric` at planned point `pt` (exact parameter match)."""
    df = s.reps
    mask = df["metric"] == metric
    for p in s.params:
        col = param_column(p)
        want = pt.get(p)
        if want is None:
            mask &= df[col].isna()
        else:
            mask &= df[col].map(lambda x, w=want: same_value(x, w)).astype(bool)
    sub = df[mask]
    unit = str(sub["unit"].iloc[0]) if not sub.empty else ""
    contended = int(sub["contended"].sum()) if "contended" in sub else 0
    return PointSample(dict(pt), sub["value"].to_numpy(dtype=float), unit, contended)
