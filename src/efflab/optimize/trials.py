"""Evaluating trials: each is one point of the experiment, planned, keyed and run
through the normal pipeline (Snakemake, the runtime, run records).

A batch of trials is one plan with explicit points and one Snakemake call, so trials
run in parallel up to `--cores` and share deps (datasets, trained models). A trial
whose invocations were measured before is a cache hit: nothing runs. Its objective
is the median over the experiment's repetitions, with the 95% bootstrap interval of
the median recorded beside it (efflab.results.intervals: one method everywhere). When the
trial has a timing goal, a repetition measured while the machine was contended (the
record's `contended`, efflab.runtime.contention) is measured again, up to
remeasure.MAX_ROUNDS rounds, before its value is told to Optuna.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.optimize.request import Request
from efflab.plan.planner import Experiment, Plan, Planner
from efflab.results.runrecord import RunRecord
from efflab.workflow import remeasure
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment

TIME_UNITS = {"s", "ms", "us", "ns"}


def is_timing(unit: str) -> bool:
    """Wall-clock metrics (latency in s/ms/us, rates per second) move with machine load."""
    return unit in TIME_UNITS or unit.endswith("/s")


@dataclass
class Estimate:
    """A metric of one trial over its repetitions."""

    median: float
    low: float  # interval for the median
    high: float
    coverage: float  # the interval's nominal confidence (0.95; 0 with one repetition)
    n: int
    values: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "median": self.median,
            "low": self.low,
            "high": self.high,
            "coverage": round(self.coverage, 4),
            "n": self.n,
            "values": self.values,
        }


@dataclass
class Outcome:
    params: dict[str, Any]
    ok: bool
    metrics: dict[str, Estimate] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)
    cached: bool = False  # every repetition was measured before: nothing ran
    contended: bool = False  # a repetition was still contended after the re-measurements
    remeasured: int = 0  # contended repetitions measured again (rounds summed)
    error: str = ""
    records: list[RunRecord] = field(default_factory=list)


@dataclass
class Batch:
    outcomes: list[Outcome]
    jobs_run: int


def median_interval(values: list[float]) -> tuple[float, float, float]:
    """The 95% interval of the median over the repetitions, the same bootstrap as
    tables, reports and the site (efflab.results.intervals); with one value, that value
    and coverage 0."""
    import numpy as np

    from efflab.results import intervals

    if len(values) < 2:
        return values[0], values[0], 0.0
    lo, hi = intervals.median_interval(np.asarray([values], dtype=float))
    return float(lo[0]), float(hi[0]), intervals.CONFIDENCE


def estimate(values: list[float]) -> Estimate:
    low, high, cov = median_interval(values)
    return Estimate(float(statistics.median(values)), low, high, cov, len(values), values)


def _trial_experiment(exp: Experiment, points: list[dict[str, Any]]) -> Experiment:
    return replace(exp, grid={}, points=[dict(p) for p in points])


def _plan_points(
    repo: Path, exp: Experiment, params: list[dict[str, Any]], runtime: RuntimeIdentity
) -> tuple[Plan | None, dict[int, str]]:
    """One plan for the batch (keyed for `runtime`); a point the planner refuses (a
    cross-field rule of the script's check.py) fails as a trial instead of stopping
    the search."""
    planner = Planner(repo, runtime=runtime)
    try:
        return planner.plan(_trial_experiment(exp, params)), {}
    except BadInput:
        pass
    bad: dict[int, str] = {}
    good: list[dict[str, Any]] = []
    for i, p in enumerate(params):
        try:
            planner.plan(_trial_experiment(exp, [p]))
            good.append(p)
        except BadInput as e:
            bad[i] = f"not a valid configuration: {e.expected}, found {e.found!r} ({e.path})"
    plan = planner.plan(_trial_experiment(exp, good)) if good else None
    return plan, bad


def _canon(params: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def evaluate(
    repo: Path,
    req: Request,
    exp: Experiment,
    params: list[dict[str, Any]],
    opts: RunOptions,
    run_id: str,
    on_progress=None,
    rounds: int = remeasure.MAX_ROUNDS,
) -> Batch:
    """Run one batch of trials (one Snakemake call) and estimate their metrics;
    contended timing repetitions are measured again up to `rounds` times."""
    if opts.waiter is None:  # a caller without a command's waiter: one for this batch
        opts = opts.but(waiter=remeasure.QuietWaiter())
    unique = list({_canon(p): p for p in params}.values())
    plan, bad = _plan_points(repo, exp, unique, opts.runtime.identity())
    refused = {_canon(unique[i]): msg for i, msg in bad.items()}
    by_params: dict[tuple, list[str]] = {}
    before: dict[str, bool] = {}
    jobs = 0
    remeasured: dict[str, int] = {}  # key -> rounds it was measured again
    recs: dict[str, RunRecord] = {}
    failed: dict[str, RunRecord] = {}
    if plan is not None:
        for pt in plan.points:
            by_params.setdefault(_canon(pt.params), []).append(pt.key)
            inv = plan.invocations[pt.key]
            before[pt.key] = (
                layout.invocation_dir(repo, inv.alias, inv.key) / "outputs.json"
            ).exists()
        timed = bool(timing_goals(req))
        previous: list[str] | None = None
        for round_ in range(rounds + 1):
            res = run_experiment(
                repo,
                exp.name,
                opts,
                overrides=req.fixed,
                run_id=run_id,
                on_progress=on_progress,
                prepared=plan,
                save_table=False,
            )
            jobs += res.jobs_run
            recs = {r.key: r for r in res.collected.ok} if res.collected else {}
            failed = {r.key: r for r in res.collected.failed} if res.collected else {}
            # a timing objective from a contended record is measured again before Optuna
            # hears of it (bounded; what is still contended after the last round says so)
            again = [k for k, r in recs.items() if timed and r.contended]
            why = remeasure.stop_reason(round_, rounds, again, previous, opts.waiter)
            if opts.dry_run or why:
                break
            remeasure.set_aside(repo, plan, again, round_ + 1)
            previous = again
            for k in again:
                remeasured[k] = remeasured.get(k, 0) + 1
    out = []
    for p in params:
        c = _canon(p)
        if c in refused:
            out.append(Outcome(params=p, ok=False, error=refused[c]))
            continue
        keys = by_params.get(c, [])
        got = [recs[k] for k in keys if k in recs]
        o = Outcome(params=p, ok=len(got) == len(keys) and bool(keys), keys=keys, records=got)
        o.cached = bool(keys) and all(before.get(k, False) for k in keys)
        if not o.ok:
            errs = [failed[k].error or "failed" for k in keys if k in failed]
            o.error = errs[0] if errs else "no run record"
            out.append(o)
            continue
        names = set.intersection(*(set(r.metrics) for r in got))
        for m in sorted(names):
            vals = [float(r.metrics[m].value) for r in got]
            if all(math.isfinite(v) for v in vals):
                o.metrics[m] = estimate(vals)
        o.remeasured = sum(remeasured.get(k, 0) for k in keys)
        o.cached = o.cached and not o.remeasured  # measured again: not served from cache
        o.contended = bool(timing_goals(req)) and any(r.contended for r in got)
        out.append(o)
    return Batch(out, jobs)


def timing_goals(req: Request) -> list[str]:
    """The objectives and constraints whose metric moves with machine load."""
    return [
        m for m in [*(x.metric for x in req.objectives), *(c.metric for c in req.constraints)]
        if is_timing(str(req.metrics.get(m, {}).get("unit", "")))
    ]  # fmt: skip
