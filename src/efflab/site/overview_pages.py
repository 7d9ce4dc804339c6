"""The two overview pages: home (what is here, with the latest state of each part) and
machines (every host whose records are present, side by side)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from efflab.site.experiment_page import latest_summary
from efflab.site.experiments import Experiment, Skipped
from efflab.site.html import Page, esc, slug, table
from efflab.site.nightly_page import Nightly, regressions
from efflab.site.paper_page import PaperRuns, latest_verdicts
from efflab.site.tournament_page import Board, leaders


@dataclass
class Machine:
    host: str
    info: dict[str, Any]
    experiments: list[str] = field(default_factory=list)
    records: int = 0


def machines(exps: list[Experiment]) -> list[Machine]:
    out: dict[str, Machine] = {}
    for e in exps:
        for s in e.sources:
            m = out.setdefault(s.host, Machine(s.host, dict(s.hostinfo)))
            if not m.info and s.hostinfo:
                m.info = dict(s.hostinfo)
            m.experiments.append(e.name)
            m.records += s.records
    return list(out.values())


def machines_page(ms: list[Machine]) -> Page:
    fields = [
        ("hostname", "hostname"),
        ("CPU", "cpu_model"),
        ("cores", "cores"),
        ("memory GB", "memory_gb"),
        ("OS", "os"),
        ("arch", "machine"),
        ("energy method", "energy_method"),
    ]
    head = ["", *[m.host for m in ms]]
    rows = [[esc(label), *[esc(m.info.get(k, "—")) for m in ms]] for label, k in fields]
    rows.append(["records read", *[str(m.records) for m in ms]])
    rows.append(
        [
            "experiments",
            *[
                ", ".join(
                    f"<a href='experiments/{slug(e)}.html'>{esc(e)}</a>" for e in m.experiments
                )
                for m in ms
            ],
        ]
    )
    body = (
        f"<p>{len(ms)} machine(s) with results here. Records of other machines arrive with "
        "<code>efflab results import PATH</code>; the host filter above narrows every page "
        "to one of them. Energy is estimated unless the method says <code>measured:</code>.</p>"
        + table(head, rows)
    )
    return Page("machines.html", "Machines", body, {"kind": "machines"}, hosts=[m.host for m in ms])


def home_page(
    exps: list[Experiment],
    papers: list[PaperRuns],
    boards: list[Board],
    nightly: Nightly | None,
    ms: list[Machine],
    skipped: list[Skipped],
    studies_html: str = "",
) -> Page:
    cards = []
    for e in exps:
        s = latest_summary(e)
        parts = []
        for src in s["sources"]:
            v = f"v{src['version']}" if src["version"] else "no table"
            parts.append(
                f"<li data-host='{esc(src['host'])}'>{esc(src['host'])}: {v} "
                f"({esc(src['created'] or '—')})</li>"
            )
        cards.append(
            f"<div class='card'><h3><a href='experiments/{slug(e.name)}.html'>{esc(e.name)}</a>"
            f"</h3>{s['metrics']} metrics<ul>{''.join(parts)}</ul></div>"
        )
    pcards = []
    for p in papers:
        lv = latest_verdicts(p)
        counts = ", ".join(f"{v} {k}" for k, v in sorted(lv["counts"].items()))
        pcards.append(
            f"<div class='card' data-host='{esc(lv['host'])}'><h3><a href='papers/{slug(p.paper)}.html'>"
            f"{esc(p.paper)}</a></h3>{esc(p.title)}<p>latest run #{lv['run']} on "
            f"{esc(lv['host'])}: {esc(counts)} of {lv['claims']} claims · {len(p.runs)} run(s)</p></div>"
        )
    tcards = []
    for b in boards:
        lead = leaders(b)
        tcards.append(
            f"<div class='card'><h3><a href='tournaments/{slug(lead['id'])}.html'>{esc(lead['id'])}"
            f"</a></h3>{esc(lead['title'])}<p>leader: <b>{esc(lead['leader'] or '—')}</b> · "
            f"{lead['ranked']} ranked, {lead['rejected']} rejected</p></div>"
        )
    if nightly:
        last = nightly.history[-1]
        regs = regressions(nightly)
        items = "".join(
            f"<li>{esc(r['experiment'])} {esc(r.get('metric'))} {esc(r.get('point'))} "
            f"{esc(r.get('change'))}</li>"
            for r in regs
        )
        night = (
            f"<p>{len(nightly.history)} night(s); last night #{esc(last.get('night'))} "
            f"({esc(last.get('started'))}): exit {esc(last.get('exit_code'))}, "
            f"{len(regs)} regression(s).</p><ul>{items}</ul>"
            "<p><a href='nightly.html'>trends</a></p>"
        )
    else:
        night = "<p>No nightly runs yet (<code>efflab nightly</code>).</p>"
    skipped_html = ""
    if skipped:
        skipped_html = (
            f"<h2 id='skipped' class='skipped'>Skipped ({len(skipped)})</h2><ul class='skipped'>"
            + "".join(
                f"<li><code>{esc(s.file)}</code>: {esc(s.reason)}</li>" for s in skipped[:200]
            )
            + "</ul>"
        )
    counts = (
        f"{len(exps)} experiment(s), {len(papers)} paper(s), {len(boards)} tournament(s), "
        f"{len(nightly.history) if nightly else 0} night(s), "
        f"<a href='machines.html'>{len(ms)} machine(s)</a>"
    )
    body = (
        f"<p>{counts}.</p>"
        f"<h2 id='experiments'>Experiments</h2><div class='cards'>{''.join(cards) or 'none'}</div>"
        f"<h2 id='papers'>Papers</h2><div class='cards'>{''.join(pcards) or 'none'}</div>"
        f"<h2 id='tournaments'>Tournaments</h2><div class='cards'>{''.join(tcards) or 'none'}</div>"
        f"<h2 id='optimize'>Optimize studies</h2><div class='cards'>{studies_html or 'none'}</div>"
        f"<h2 id='nightly'>Nightly</h2>{night}{skipped_html}"
    )
    data = {
        "kind": "home",
        "counts": {
            "experiments": len(exps),
            "papers": len(papers),
            "tournaments": len(boards),
            "nights": len(nightly.history) if nightly else 0,
            "machines": len(ms),
            "skipped": len(skipped),
        },
    }
    return Page("index.html", "efflab playground", body, data)
