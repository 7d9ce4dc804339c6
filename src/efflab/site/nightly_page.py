"""The nightly page: trend plots per experiment and metric over the nights (the
dashboard's `trend_series`, with a reader that skips a bad record and names it, so
both draw the same medians), nights flagged as regressions marked, each with the
commit range it covers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.layout import nightly_dir
from efflab.nightly import dashboard
from efflab.nightly.history import read_history
from efflab.results import records
from efflab.site.experiments import Skipped, read_records
from efflab.site.html import Page, esc, table

MAX_NIGHTS = 60  # trend window shown; older nights stay in the history file


@dataclass
class Nightly:
    history: list[dict[str, Any]]
    summaries: dict[int, dict[str, Any]] = field(default_factory=dict)
    trends: list[dict[str, Any]] = field(default_factory=list)


def _commit(entry: dict[str, Any]) -> str:
    return str((entry.get("git") or {}).get("commit") or "?")[:10]


def load_nightly(repo: Path, skipped: list[Skipped]) -> Nightly | None:
    try:
        history = read_history(repo)
    except (OSError, ValueError) as exc:
        skipped.append(Skipped(str(nightly_dir(repo) / "history.jsonl"), f"unreadable ({exc})"))
        return None
    if not history:
        return None
    history = history[-MAX_NIGHTS:]
    n = Nightly(history)
    for h in history:
        f = nightly_dir(repo) / str(h.get("night")) / "summary.json"
        if f.is_file():
            try:
                n.summaries[h["night"]] = json.loads(f.read_text())
            except (OSError, ValueError) as exc:
                skipped.append(Skipped(str(f), f"nightly summary unreadable ({exc})"))
    commit_of = {h.get("night"): _commit(h) for h in history}
    prev_of = {b.get("night"): _commit(a) for a, b in zip(history, history[1:], strict=False)}
    exps: dict[str, dict[str, dict[str, str]]] = {}
    for s in n.summaries.values():
        for f in s.get("findings") or []:
            exps.setdefault(f["experiment"], {})[f["metric"]] = {
                "unit": f.get("unit", ""),
                "better": f.get("better", ""),
            }
    for exp, metrics in sorted(exps.items()):
        runs = records.runs_dir(repo, exp)

        def night_records(entry: dict[str, Any], runs: Path = runs, exp: str = exp):
            keys = set(entry["experiments"][exp]["keys"])
            return read_records(runs, skipped, keys, update=True)  # skips a bad one, named

        data = dashboard.trend_series(repo, history, exp, set(metrics), night_records)
        ticks = [
            {"night": night, "version": v, "commit": commit_of.get(night, "?")}
            for night, v in data["ticks"]
        ]
        for m, meta in sorted(metrics.items()):
            series = [
                {"label": data["labels"].get(g, g), "pts": pts}
                for g, pts in sorted(
                    data["series"][m].items(), key=lambda kv: data["labels"].get(kv[0], kv[0])
                )
            ]
            flags = []
            for x, g, verdict in data["flags"][m]:
                night = ticks[x]["night"]
                flags.append(
                    {
                        "x": x,
                        "label": data["labels"].get(g, g),
                        "verdict": verdict,
                        "range": f"{prev_of.get(night, '(first)')}..{commit_of.get(night, '?')}",
                    }
                )
            n.trends.append(
                {"exp": exp, "metric": m, **meta, "ticks": ticks, "series": series, "flags": flags}
            )
    return n


def regressions(n: Nightly) -> list[dict[str, Any]]:
    """Flagged regressions of the last night (from its history entry)."""
    last = n.history[-1]
    out = []
    for exp, e in (last.get("experiments") or {}).items():
        for f in e.get("flagged") or []:
            if f.get("verdict") == "regression":
                out.append({"experiment": exp, **f})
    return out


def nightly_page(n: Nightly, host: str) -> Page:
    rows = []
    prev = "(first)"
    for h in n.history:
        night = h.get("night")
        s = n.summaries.get(night, {})
        counts = s.get("counts") or {}
        flagged = sum(len(e.get("flagged") or []) for e in (h.get("experiments") or {}).values())
        link = f"nightly/{night}/index.html" if s else ""
        rows.append(
            [
                f"<a href='{link}'>#{night}</a>" if link else f"#{night}",
                esc(h.get("started")),
                f"<code>{esc(prev)}..{esc(_commit(h))}</code>",
                "FAILED" if h.get("exit_code") else "ok",
                esc(counts.get("regression", "—")),
                str(flagged),
                esc(", ".join(sorted(h.get("experiments") or {}))),
            ]
        )
        prev = _commit(h)
    plots = "".join(
        f"<div class='plot' data-kind='trend' data-index='{i}'></div>" for i in range(len(n.trends))
    )
    body = (
        f"<p data-host='{esc(host)}'>{len(n.history)} night(s) on {esc(host)}; trend plots show "
        "each point's nightly median; a red ✕ marks a night flagged as a regression "
        "(hover it for the commit range it covers).</p>"
        f"<div class='plots'>{plots}</div><h2>Nights</h2>"
        + table(
            ["night", "started", "commits", "exit", "regressions", "flagged", "experiments"],
            list(reversed(rows)),
        )  # fmt: skip
    )
    data = {"kind": "nightly", "trends": n.trends}
    return Page("nightly.html", "Nightly benchmarks", body, data, plots=True, hosts=[host])
