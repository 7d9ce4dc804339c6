"""What a study found: every trial (parameters, objective medians with intervals,
constraint status), the Pareto front (or the best trial), the front as a versioned
table, a PNG of trials and front, and the best configurations as `efflab run` lines.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from efflab.core.specio import atomic_write_json, atomic_write_text
from efflab.optimize import plot
from efflab.optimize.request import Request
from efflab.optimize.study import OUTCOME, Opened, finished, table_name
from efflab.results import provenance, records, tables


@dataclass
class TrialRow:
    number: int
    params: dict[str, Any]
    ok: bool
    feasible: bool | None  # None: failed, no measurement
    objectives: dict[str, dict[str, Any]]  # metric -> median, low, high, coverage, n
    constraints: dict[str, dict[str, Any]]  # "M>=X" -> median, holds
    cached: bool
    contended: bool  # still contended after the re-measurements
    keys: list[str]
    error: str = ""
    front: bool = False
    remeasured: int = 0  # contended repetitions measured again before Optuna was told

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.number,
            "params": self.params,
            "status": "ok" if self.ok else "failed",
            "feasible": self.feasible,
            "front": self.front,
            "objectives": self.objectives,
            "constraints": self.constraints,
            "cached": self.cached,
            "contended": self.contended,
            "remeasured": self.remeasured,
            "keys": self.keys,
            "error": self.error,
        }


@dataclass
class Result:
    request: Request
    opened: Opened
    rows: list[TrialRow]
    front: list[TrialRow]
    table_version: int | None
    new_version: bool
    jobs_run: int
    trials_run: int  # in this session
    plot: Path | None
    set_lines: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return summary(self)


def rows_of(req: Request, opened: Opened) -> list[TrialRow]:
    out = []
    for t in sorted(finished(opened.study), key=lambda t: t.number):
        ok = t.user_attrs.get(OUTCOME) == "ok"
        metrics = t.user_attrs.get("metrics") or {}
        objectives = {o.metric: metrics[o.metric] for o in req.objectives if o.metric in metrics}
        cons = {}
        for c in req.constraints:
            if c.metric in metrics:
                med = metrics[c.metric]["median"]
                cons[c.text()] = {"median": med, "holds": c.holds(med)}
        out.append(
            TrialRow(
                number=t.number,
                params={n: t.params.get(n) for n in req.space.names()},
                ok=ok,
                feasible=all(v["holds"] for v in cons.values()) if ok else None,
                objectives=objectives,
                constraints=cons,
                cached=bool(t.user_attrs.get("cached")),
                contended=bool(t.user_attrs.get("contended")),
                remeasured=int(t.user_attrs.get("remeasured") or 0),
                keys=list(t.user_attrs.get("keys") or []),
                error=t.user_attrs.get("error", ""),
            )
        )
    return out


def _dominates(a: list[float], b: list[float]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(
        x > y for x, y in zip(a, b, strict=True)
    )


def pareto(req: Request, rows: list[TrialRow]) -> list[TrialRow]:
    """Non-dominated feasible trials (objective medians), one per configuration; for a
    single objective, the best one."""
    signs = [1.0 if o.direction == "maximize" else -1.0 for o in req.objectives]
    uniq: dict[str, TrialRow] = {}
    for r in rows:
        if r.ok and r.feasible:
            uniq.setdefault(repr(sorted(r.params.items(), key=lambda kv: kv[0])), r)
    cands = list(uniq.values())
    score = {
        r.number: [
            s * r.objectives[o.metric]["median"] for s, o in zip(signs, req.objectives, strict=True)
        ]
        for r in cands
    }
    if len(req.objectives) == 1:
        return [max(cands, key=lambda r: (score[r.number][0], -r.number))] if cands else []
    front = [
        r for r in cands if not any(_dominates(score[q.number], score[r.number]) for q in cands)
    ]
    return sorted(front, key=lambda r: score[r.number][0], reverse=True)


def set_line(req: Request, params: dict[str, Any]) -> str:
    """The configuration as a command the user can run."""
    parts = ["efflab", "run", req.experiment] + (["--quick"] if req.quick else [])
    for k, v in {**req.fixed, **params}.items():
        text = "true" if v is True else "false" if v is False else str(v)
        parts += ["--set", shlex.quote(f"{k}={text}")]
    return " ".join(parts)


def _front_table(repo: Path, req: Request, front: list[TrialRow]) -> pd.DataFrame:
    keys = {k for r in front for k in r.keys}
    by_key = {rec.key: rec for rec in records.load(repo, req.experiment, keys)}
    recs = []
    for r in front:
        for k in r.keys:
            if k in by_key:  # the trial's own parameters, whatever run wrote the record
                recs.append(by_key[k].at_point({"trial": r.number, **r.params}))
    return tables.aggregate(recs, ["trial", *req.space.names()])


def finish(repo: Path, req: Request, opened: Opened, jobs: int, trials_run: int) -> Result:
    rows = rows_of(req, opened)
    front = pareto(req, rows)
    on_front = {r.number for r in front}
    for r in rows:
        r.front = r.number in on_front
    version, new = None, False
    if front:
        df = _front_table(repo, req, front)
        prov = provenance.collect(repo)
        version, new = tables.save(
            repo,
            table_name(req.experiment),
            df,
            prov["git"]["commit"],
            {
                "study": opened.number,
                "signature": req.signature(),
                "objectives": [o.text() for o in req.objectives],
                "constraints": [c.text() for c in req.constraints],
                "trials": len(rows),
                "git_dirty": prov["git"]["dirty"],
                "quick": req.quick,
            },
        )
    png = plot.trials_plot(req, rows, opened.folder / "trials.png") if rows else None
    res = Result(
        request=req,
        opened=opened,
        rows=rows,
        front=front,
        table_version=version,
        new_version=new,
        jobs_run=jobs,
        trials_run=trials_run,
        plot=png,
        set_lines=[set_line(req, r.params) for r in front],
    )
    atomic_write_json(opened.folder / "trials.json", [r.to_json() for r in rows])
    atomic_write_text(opened.folder / "trials.csv", tables.to_csv(trials_frame(req, rows)))
    atomic_write_json(opened.folder / "summary.json", summary(res))
    return res


def trials_frame(req: Request, rows: list[TrialRow]) -> pd.DataFrame:
    """One row per trial: parameters, objective medians and intervals, constraints."""
    out = []
    for r in rows:
        row: dict[str, Any] = {"trial": r.number, **r.params, "status": "ok" if r.ok else "failed"}
        for o in req.objectives:
            e = r.objectives.get(o.metric) or {}
            row[o.metric] = e.get("median")
            row[f"{o.metric}_low"] = e.get("low")
            row[f"{o.metric}_high"] = e.get("high")
        for c in req.constraints:
            row[c.text()] = (r.constraints.get(c.text()) or {}).get("median")
        row |= {"feasible": r.feasible, "front": r.front, "cached": r.cached,
                "contended": r.contended, "remeasured": r.remeasured,
                "error": r.error}  # fmt: skip
        out.append(row)
    return pd.DataFrame(out)


def summary(res: Result) -> dict[str, Any]:
    rows = res.rows
    return {
        **res.request.to_json(),
        "study": res.opened.number,
        "folder": str(res.opened.folder),
        "resumed": res.opened.resumed,
        "requeued_interrupted": res.opened.interrupted,
        "trials_finished": len(rows),
        "trials_run_now": res.trials_run,
        "jobs_run_now": res.jobs_run,
        "trials_cached": sum(r.cached for r in rows),
        "trials_failed": sum(not r.ok for r in rows),
        "trials_infeasible": sum(r.ok and not r.feasible for r in rows),
        "trials_contended": sum(r.contended for r in rows),
        "trials_remeasured": sum(r.remeasured > 0 for r in rows),
        "space_size": _finite(res.request.space.size()),
        "front": [r.to_json() for r in res.front],
        "best_runs": res.set_lines,
        "table": {
            "name": table_name(res.request.experiment),
            "version": res.table_version,
            "new_version": res.new_version,
        },
        "plot": str(res.plot) if res.plot else None,
        "trials": [r.to_json() for r in rows],
    }


def _finite(x: float) -> float | None:
    return None if x == float("inf") else int(x)
