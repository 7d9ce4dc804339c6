"""Optimize studies on the site: one page per experiment with a study, an interactive
plot of every trial and the Pareto front (or the best trial), and the front's table.

What is drawn as the front comes from the versioned front table
(`results/<exp>/optimize/tables/v<N>`, written by `efflab optimize`), the latest
version; the trials around it from that version's study (`studies/<n>/trials.json`,
named in the table's manifest). Paths are read here rather than through
efflab.optimize, whose modules import Optuna (seconds) for the search itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.results import tables
from efflab.site.experiment_page import run_command
from efflab.site.experiments import Skipped
from efflab.site.html import Page, esc, fmt, slug, table


@dataclass
class Study:
    experiment: str
    version: int
    manifest: dict[str, Any]
    front: list[dict[str, Any]]  # the table's rows: trial, params..., metric, median, ...
    trials: list[dict[str, Any]] = field(default_factory=list)
    params: list[str] = field(default_factory=list)


def _lineage(experiment: str) -> str:
    return f"{experiment}/optimize"  # efflab.optimize.study.table_name


def load_studies(repo: Path, skipped: list[Skipped]) -> list[Study]:
    root = layout.results_dir(repo)
    out: list[Study] = []
    if not root.is_dir():
        return out
    for d in sorted(root.iterdir()):
        if not (d / "optimize" / "tables").is_dir():
            continue
        name = _lineage(d.name)
        try:
            df, v = tables.load(repo, name)
            man = tables.manifest(repo, name, v)
        except (BadInput, OSError, ValueError) as exc:
            skipped.append(Skipped(str(d / "optimize" / "tables"), f"front table unreadable ({exc})"))  # fmt: skip
            continue
        rows = json.loads(df.to_json(orient="records"))
        params = [c for c in df.columns if c not in tables.STAT_COLUMNS and c != "trial"]
        s = Study(d.name, v, man, rows, params=params)
        f = d / "optimize" / "studies" / str(man.get("study")) / "trials.json"
        try:
            s.trials = json.loads(f.read_text())
        except (OSError, ValueError) as exc:
            skipped.append(Skipped(str(f), f"study trials unreadable ({exc}); front only"))
        out.append(s)
    return out


def _goal(text: str) -> tuple[str, str]:
    metric, _, direction = text.partition(":")
    return metric, direction


def study_page(s: Study) -> Page:
    objectives = [_goal(o) for o in s.manifest.get("objectives") or []]
    constraints = list(s.manifest.get("constraints") or [])
    front_trials = sorted({int(r["trial"]) for r in s.front})
    medians: dict[int, dict[str, float]] = {}
    spans: dict[int, dict[str, tuple[Any, Any]]] = {}  # the 95% interval of each median
    units: dict[str, str] = {}
    for r in s.front:
        medians.setdefault(int(r["trial"]), {})[r["metric"]] = r["median"]
        spans.setdefault(int(r["trial"]), {})[r["metric"]] = (r.get("ci95_low"), r.get("ci95_high"))
        units[r["metric"]] = r["unit"]
    trials = []
    for t in s.trials:
        obj = {m: (t.get("objectives") or {}).get(m, {}).get("median") for m, _ in objectives}
        status = "failed" if t.get("status") != "ok" else "feasible" if t.get("feasible") else "infeasible"  # fmt: skip
        trials.append(
            {
                "trial": t["trial"],
                "label": " ".join(f"{k}={v}" for k, v in (t.get("params") or {}).items()),
                "status": status,
                "front": t["trial"] in front_trials,
                "cached": bool(t.get("cached")),
                "remeasured": int(t.get("remeasured") or 0),
                "obj": obj,
                "span": {
                    m: [(t.get("objectives") or {}).get(m, {}).get(k) for k in ("low", "high")]
                    for m, _ in objectives
                },
            }
        )
    first = {int(r["trial"]): r for r in reversed(s.front)}  # one table row per trial
    front = []
    for n in front_trials:
        params = {k: first[n].get(k) for k in s.params}
        front.append(
            {
                "trial": n,
                "params": params,
                "label": " ".join(f"{k}={v}" for k, v in params.items()),
                "obj": {m: medians[n].get(m) for m, _ in objectives},
                "span": {m: list(spans[n].get(m, (None, None))) for m, _ in objectives},
            }
        )
    data = {
        "kind": "optimize",
        "objectives": [{"metric": m, "direction": d, "unit": units.get(m, "")} for m, d in objectives],
        "trials": trials,
        "front": front,
    }  # fmt: skip
    metrics = [m for m, _ in objectives]
    head = [
        "trial",
        *s.params,
        *(f"{m} median [95% interval]" for m in metrics),
        "measure it again",
    ]
    rows = [
        [str(f["trial"]), *(esc(fmt(f["params"].get(k))) for k in s.params),
         *(esc(_with_span(f["obj"].get(m), f["span"].get(m))) for m in metrics),
         f"<code class='cmd'>{esc(run_command(s.experiment, f['params']))}</code>"]
        for f in front
    ]  # fmt: skip
    title = "Pareto front" if len(objectives) > 1 else "best trial"
    counts = {
        k: sum(t["status"] == k for t in trials) for k in ("feasible", "infeasible", "failed")
    }
    body = (
        f"<p>Study {esc(s.manifest.get('study'))} of <a href='../experiments/{slug(s.experiment)}.html'>"
        f"{esc(s.experiment)}</a>: {len(trials)} trials ({counts['feasible']} feasible, "
        f"{counts['infeasible']} infeasible, {counts['failed']} failed). Objectives: "
        f"{esc(', '.join(s.manifest.get('objectives') or []))}; constraints: "
        f"{esc(', '.join(constraints) or 'none')}. Each point is a trial's median over its "
        "repetitions, the bar its 95% interval (a bootstrap over the repetitions, as in "
        "every table); the front is the versioned table "
        f"<code>{esc(_lineage(s.experiment))}</code> v{s.version}.</p>"
        "<div class='plot' data-kind='optimize'></div>"
        f"<h2>{title}</h2>{table(head, rows)}"
    )
    return Page(f"optimize/{slug(s.experiment)}.html", f"{s.experiment}: optimize", body, data, plots=True)  # fmt: skip


def _with_span(median: Any, span: list[Any] | None) -> str:
    lo, hi = span or (None, None)
    if lo is None or hi is None or lo != lo or hi != hi:  # NaN: one repetition
        return fmt(median)
    return f"{fmt(median)} [{fmt(lo)}, {fmt(hi)}]"


def study_cards(studies: list[Study]) -> str:
    """The home page's section: a card per study."""
    cards = [
        f"<div class='card'><h3><a href='optimize/{slug(s.experiment)}.html'>{esc(s.experiment)}</a>"
        f"</h3>study {esc(s.manifest.get('study'))}, {len(s.trials)} trials, front of "
        f"{len({r['trial'] for r in s.front})} (table v{s.version})</div>"
        for s in studies
    ]
    return "".join(cards)
