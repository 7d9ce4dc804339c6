"""`efflab nightly`: run the suite anew, version the tables, judge against past nights.

Each night plans with a per-night salt (its run id), so the top-level invocations get
new keys and really measure again, while shared deps (datasets, trained models) stay
cached. Tonight's run records are compared, per point and metric, with the pooled
records of the last K comparable nights (`efflab.nightly.history`) by `efflab.nightly.regression`; all
comparisons of a night are corrected together. The night is appended to the history
under a lock, so two nightlies never number or baseline each other half-way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from efflab.core.clock import now_iso
from efflab.core.errors import RunFailed
from efflab.core.layout import nightly_dir
from efflab.core.specio import canonical_json
from efflab.nightly import regression as regress
from efflab.nightly import suite as suite_mod
from efflab.nightly.history import (
    append_history,
    baseline_nights,
    group_of,
    point_label,
    read_history,
    samples,
)
from efflab.plan.planner import Plan
from efflab.results import provenance
from efflab.workflow.options import RunOptions
from efflab.workflow.pipeline import run_experiment


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
    dashboard: str = ""
    published: dict[str, Any] | None = None

    @property
    def regressions(self) -> list[Finding]:
        return [f for f in self.findings if f.verdict == regress.REGRESSION]

    @property
    def failures(self) -> list[str]:
        return [m for o in self.experiments.values() for m in o.failures]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions or self.failures else 0

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
                "counts": counts,
                "undetectable": sum(1 for f in self.findings if not f.detectable),
                "failures": self.failures,
                "experiments": {k: asdict(v) for k, v in self.experiments.items()},
                "findings": [asdict(f) for f in self.findings],
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


def assess(
    current: list[dict[str, Any]],
    past: dict[str, list[dict[tuple[str, str], list[float]]]],
    metrics: list[str],
    policy_for: Callable[[str], regress.Policy],
) -> tuple[list[regress.Shift], list[regress.Policy], list[dict[str, Any]]]:
    """Shifts for every (point, metric) of tonight's records against the pooled past.

    Returns the shifts, their policies and per-shift context (point, unit, better,
    nights pooled), ready for `regress.decide` over the whole night.
    """
    now = samples(current)
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in current:
        for m, v in rec["metrics"].items():
            meta.setdefault(
                (group_of(rec), m),
                {"point": rec["point"], "unit": v["unit"], "better": v["better"]},
            )
    shifts, pols, ctx = [], [], []
    for (g, m), vals in sorted(now.items(), key=lambda kv: (canonical_json(meta[kv[0]]), kv[0])):
        if m not in metrics:
            continue
        pol = policy_for(m)
        nights = [n[(g, m)] for n in past.get(g, []) if (g, m) in n][: pol.baseline_runs]
        base = [x for n in nights for x in n]
        shifts.append(regress.shift(base, vals, meta[(g, m)]["better"]))
        pols.append(pol)
        ctx.append({**meta[(g, m)], "group": g, "metric": m, "baseline_nights": len(nights)})
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
                notes=d.notes,
            )
        )


def history_entry(night: Night) -> dict[str, Any]:
    exps = {}
    for name, o in night.experiments.items():
        flagged = [
            {
                "point": f.point,
                "group": f.group,
                "metric": f.metric,
                "verdict": f.verdict,
                "change": f.change,
            }
            for f in night.findings
            if f.experiment == name and f.verdict in (regress.REGRESSION, regress.IMPROVEMENT)
        ]
        exps[name] = {**asdict(o), "flagged": flagged}
    return finite(
        {
            "night": night.night,
            "run_id": night.run_id,
            "started": night.started,
            "ended": night.ended,
            "suite": night.suite,
            "git": night.git,
            "exit_code": night.exit_code,
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
) -> Night:
    """Run a whole night under a lock; returns the judged night (history already written).

    `plans` must come from `suite.plan(repo, suite, salt=run_id)`; passing them lets
    the caller report bad input before taking the lock.
    """
    opts = opts or RunOptions()
    plans = plans if plans is not None else suite_mod.plan(repo, suite, salt=run_id)
    nightly_dir(repo).mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(nightly_dir(repo) / ".lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFailed(f"another `efflab nightly` holds {lock.lock_file}") from None
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
            current = [r for r in (res.collected.ok if res.collected else []) if r["key"] in keys]
            outcome.keys = sorted(r["key"] for r in current)
            k = suite.max_baseline_runs()
            past = baseline_nights(repo, history, entry.name, {group_of(r) for r in current}, k)
            metrics = suite_mod.compared_metrics(entry, p)
            shifts, pols, ctx = assess(
                current, past, metrics, lambda m, e=entry: suite.policy(e, m)
            )
            parts.append((entry.name, shifts, pols, ctx))
        judge(night, parts)
        night.ended = now_iso("seconds")
        night.dashboard = f"results/nightly/{night.night}/index.html"
        append_history(repo, history_entry(night))
        return night
    finally:
        lock.release()
