"""`efflab nightly`: run the suite anew, version the tables, judge against past nights.

Each night plans with a per-night salt (its run id), so the top-level invocations get
new keys and really measure again, while shared deps (datasets, trained models) stay
cached. Tonight's run records are compared, per point and metric, with the pooled
records of the last K comparable nights (`efflab.nightly.history`: regression-flagged
nights stay out until accepted) by `efflab.nightly.regression`; all comparisons of a
night are corrected together. Then every metric's whole history is searched for change
points (`efflab.nightly.changepoints`). The night fails (exit 1) on a regression, an
open change point or a failed point, and with `strict` also on `underpowered` and
`no-baseline`. The night is appended to the history under a lock, so two nightlies
never number or baseline each other half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from efflab.core.clock import now_iso
from efflab.core.errors import RunFailed
from efflab.core.specio import canonical_json
from efflab.nightly import changepoints as cpm
from efflab.nightly import regression as regress
from efflab.nightly import suite as suite_mod
from efflab.nightly.findings import ExperimentOutcome, Finding, Night, finite
from efflab.nightly.history import (
    Baseline,
    append_history,
    baselines,
    group_of,
    nightly_lock,
    read_history,
    samples,
)
from efflab.plan.planner import Plan
from efflab.results import provenance
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment


def assess(
    current: list[dict[str, Any]],
    past: dict[tuple[str, str], Baseline],
    metrics: list[str],
    policy_for: Callable[[str], regress.Policy],
    neutral: tuple[str, ...] = (),
) -> tuple[list[regress.Shift], list[regress.Policy], list[dict[str, Any]]]:
    """Shifts for every (point, metric) of tonight's records against its baseline.

    `past` comes from `history.baselines`. Returns the shifts, their policies and
    per-shift context (point, unit, better, nights pooled, why the baseline is what it
    is), ready for `regress.decide` over the whole night.
    """
    now = samples(current, neutral)
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in current:
        for m, v in rec["metrics"].items():
            meta.setdefault(
                (group_of(rec, neutral), m),
                {
                    "point": rec["point"],
                    "unit": v["unit"],
                    "better": v["better"],
                    "alias": rec["alias"],
                    "inputs": rec.get("inputs", rec["point"]),
                },
            )
    shifts, pols, ctx = [], [], []
    for (g, m), vals in sorted(now.items(), key=lambda kv: (canonical_json(meta[kv[0]]), kv[0])):
        if m not in metrics:
            continue
        pol = policy_for(m)
        b = past.get((g, m)) or Baseline()
        nights = b.nights[: pol.baseline_runs]
        base = [x for n in nights for x in n.values]
        shifts.append(regress.shift(base, vals, meta[(g, m)]["better"], pol.noiseless))
        pols.append(pol)
        ctx.append(
            {
                **meta[(g, m)],
                "group": g,
                "metric": m,
                "baseline_nights": len(nights),
                "excluded_nights": sorted(b.excluded),
                "reset": b.reset,
                "notes": b.notes(),
            }
        )
    return shifts, pols, ctx


def judge(
    night: Night,
    parts: list[tuple[str, list[regress.Shift], list[regress.Policy], list[dict[str, Any]]]],
) -> None:
    """Correct all of the night's comparisons together and store the findings."""
    shifts = [s for _, ss, _, _ in parts for s in ss]
    pols = [p for _, _, ps, _ in parts for p in ps]
    ctxs = [(e, c) for e, _, _, cs in parts for c in cs]
    for d, (exp, c) in zip(regress.decide(shifts, pols, night.correction), ctxs, strict=True):
        s = d.shift
        night.findings.append(
            Finding(
                experiment=exp,
                point=c["point"],
                group=c["group"],
                metric=c["metric"],
                unit=c["unit"],
                better=c["better"],
                verdict=d.verdict,
                change=s.change,
                baseline_median=s.baseline_median,
                current_median=s.current_median,
                p_worse=s.p_worse,
                p_worse_adj=d.p_worse_adj,
                p_better=s.p_better,
                p_better_adj=d.p_better_adj,
                n_baseline=s.n_baseline,
                n_current=s.n_current,
                baseline_nights=c["baseline_nights"],
                method=s.method,
                detectable=d.detectable,
                policy=asdict(d.policy),
                notes=[*c["notes"], *d.notes],
                alias=c["alias"],
                inputs=c["inputs"],
                excluded_nights=c["excluded_nights"],
                reset=c["reset"],
            )
        )


def evaluate(
    repo: Path,
    history: list[dict[str, Any]],
    night: Night,
    suite: suite_mod.Suite,
    entry: suite_mod.Entry,
    current: list[dict[str, Any]],
    metrics: list[str],
    declared: Plan | dict[str, Any],
) -> tuple[str, list[regress.Shift], list[regress.Policy], list[dict[str, Any]]]:
    """One experiment of tonight: baselines, shifts (for `judge`) and change points.

    `declared` is the experiment's plan (or its script's `outputs.metrics`), where
    metrics are declared noiseless.
    """
    meta = declared.script.metrics if isinstance(declared, Plan) else declared
    neutral = tuple(suite.neutral(entry))

    def policy_for(m: str) -> regress.Policy:
        return suite.policy(entry, m, meta)

    past = baselines(
        repo, history, entry.name, current, lambda m: policy_for(m).baseline_runs, neutral
    )
    shifts, pols, ctx = assess(current, past, metrics, policy_for, neutral)
    night.change_points += cpm.for_experiment(
        repo,
        history,
        entry.name,
        (night.night, night.git.get("commit"), current),
        metrics,
        policy_for,
        neutral,
        suite.change_points,
    )
    return entry.name, shifts, pols, ctx


def history_entry(night: Night) -> dict[str, Any]:
    exps = {}
    for name, o in night.experiments.items():
        flagged = [
            {
                "point": f.point,
                "group": f.group,
                "alias": f.alias,
                "inputs": f.inputs,
                "metric": f.metric,
                "verdict": f.verdict,
                "change": f.change,
            }
            for f in night.findings
            if f.experiment == name and f.verdict in (regress.REGRESSION, regress.IMPROVEMENT)
        ]
        cps = [
            {k: v for k, v in asdict(c).items() if k != "experiment"}
            for c in night.change_points
            if c.experiment == name
        ]
        exps[name] = {**asdict(o), "flagged": flagged, "change_points": cps}
    return finite(
        {
            "night": night.night,
            "run_id": night.run_id,
            "started": night.started,
            "ended": night.ended,
            "suite": night.suite,
            "git": night.git,
            "exit_code": night.exit_code,
            "strict": night.strict,
            "experiments": exps,
        }
    )


def run(
    repo: Path,
    suite: suite_mod.Suite,
    *,
    run_id: str,
    plans: list[Plan] | None = None,
    opts: RunOptions | None = None,
    on_start: Callable[[str], Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    strict: bool = False,
) -> Night:
    """Run a whole night under a lock; returns the judged night (history already written).

    `plans` must come from `suite.plan(repo, suite, salt=run_id)`; passing them lets
    the caller report bad input before taking the lock.
    """
    opts = opts or RunOptions()
    if plans is None:
        plans = suite_mod.plan(repo, suite, salt=run_id, runtime=opts.runtime.identity())
    lock = nightly_lock(repo, "nightly", run_id)
    try:
        history = read_history(repo)
        try:
            rel = str(suite.file.resolve().relative_to(repo))
        except ValueError:
            rel = str(suite.file)
        night = Night(
            night=(history[-1]["night"] + 1) if history else 1,
            run_id=run_id,
            started=now_iso("seconds"),
            suite=rel,
            correction=suite.correction,
            git=provenance.git_state(repo),
            strict=strict,
        )
        parts = []
        for entry, p in zip(suite.entries, plans, strict=True):
            if on_start:
                on_start(entry.name)
            outcome = ExperimentOutcome(workload=entry.workload())
            night.experiments[entry.name] = outcome
            try:
                res = run_experiment(
                    repo,
                    entry.name,
                    opts.but(quick=entry.quick),
                    overrides=entry.overrides,
                    run_id=run_id,
                    salt=run_id,
                    on_progress=on_progress,
                    prepared=p,
                )
            except RunFailed as exc:
                outcome.failures.append(f"{entry.name}: {exc}")
                continue
            outcome.version, outcome.new_version = res.version, res.new_version
            outcome.jobs_run, outcome.failures = res.jobs_run, list(res.failures)
            keys = {pt.key for pt in p.points}
            ok = res.collected.ok if res.collected else []
            # the nightly's statistics read JSON records (as the index returns them)
            current = [r.to_json() for r in ok if r.key in keys]
            outcome.keys = sorted(r["key"] for r in current)
            metrics = suite_mod.compared_metrics(entry, p)
            parts.append(evaluate(repo, history, night, suite, entry, current, metrics, p))
        judge(night, parts)
        night.ended = now_iso("seconds")
        night.dashboard = f"results/nightly/{night.night}/index.html"
        append_history(repo, history_entry(night))
        return night
    finally:
        lock.release()
