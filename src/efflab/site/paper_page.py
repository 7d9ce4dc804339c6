"""The paper page: every reproduction run of a paper as a runs × claims grid (which run,
which machine, which commit), each cell linking to that run's own report.

Reads the reports' `verdicts.json` defensively: the verdict format grows (intervals,
`inconclusive`), and a field this page does not know is shown as-is or left out, never
an error. A report that cannot be read is skipped and named.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.errors import BadInput
from efflab.core.specio import read_json_file
from efflab.results import safe_copy, tables
from efflab.results.check import check_verdicts
from efflab.results.importer import record_host
from efflab.site.experiments import Skipped
from efflab.site.html import Page, esc, fmt, slug, table
from efflab.site.report_page import render_imported

VERDICT_CLASS = {
    "reproduced": "ok",
    "not reproduced": "bad",
    "error": "err",
    "inconclusive": "inc",
}


@dataclass
class Run:
    number: int
    folder: Path
    verdicts: dict[str, Any]
    host: str
    commit: str | None
    dirty: bool | None
    imported: dict[str, Any] | None = None

    @property
    def claims(self) -> list[dict[str, Any]]:
        return [c for c in self.verdicts.get("claims") or [] if isinstance(c, dict)]


@dataclass
class PaperRuns:
    paper: str
    title: str
    runs: list[Run] = field(default_factory=list)

    @property
    def claim_ids(self) -> list[str]:
        out: list[str] = []
        for r in self.runs:
            for c in r.claims:
                if str(c.get("id")) not in out:
                    out.append(str(c.get("id")))
        return out


def _local_host(repo: Path, verdicts: dict[str, Any]) -> str | None:
    """The machine that made a local report: the host of its tables' records."""
    hosts: Counter[str] = Counter()
    for e in verdicts.get("experiments") or []:
        exp, v = e.get("experiment"), e.get("table_version")
        if not exp or not v:
            continue
        try:
            keys = tables.manifest(repo, exp, v).get("keys") or []
        except (BadInput, OSError, ValueError):
            continue
        for k in keys[:3] if isinstance(keys, list) else []:
            f = layout.runs_dir(repo, exp) / f"{k}.json"
            try:
                hosts[record_host(read_json_file(f, "a run record"))] += 1
            except BadInput:
                continue
    return hosts.most_common(1)[0][0] if hosts else None


def _imported_meta(f: Path) -> dict[str, Any]:
    """What `results import` wrote beside a report; an unreadable one still marks it imported."""
    try:
        imp = read_json_file(f, "an import note")
    except BadInput:
        return {"host": "imported"}
    if not isinstance(imp, dict):
        return {"host": "imported"}
    return {k: str(v)[:200] for k, v in imp.items() if isinstance(v, str | int | float)}


def load_papers(repo: Path, skipped: list[Skipped]) -> list[PaperRuns]:
    root = layout.results_dir(repo) / "reproductions"
    out = []
    for pdir in sorted(root.iterdir()) if root.is_dir() else []:
        if not pdir.is_dir() or pdir.name.startswith("."):
            continue
        pr = PaperRuns(pdir.name, pdir.name)
        for rdir in sorted(
            (d for d in pdir.iterdir() if d.name.isascii() and d.name.isdigit()),
            key=lambda d: int(d.name),
        ):
            f = rdir / "verdicts.json"
            try:
                v = check_verdicts(f)  # the schema `results check` uses: no crash on "abc"
            except BadInput as exc:
                why = f"{exc.path}: expected {exc.expected}, found {exc.found}"
                skipped.append(Skipped(str(f), f"reproduction report unreadable ({why})"))
                continue
            imp = _imported_meta(rdir / "imported.json") if (rdir / "imported.json").exists() else None  # fmt: skip
            host = (imp or {}).get("host") or _local_host(repo, v) or "this machine"
            exps = [e for e in v.get("experiments") or [] if isinstance(e, dict)]
            commit = next((e.get("git_commit") for e in exps if e.get("git_commit")), None)
            dirty = any(bool(e.get("git_dirty")) for e in exps) if exps else None
            pr.runs.append(Run(int(rdir.name), rdir, v, str(host), commit, dirty, imp))
            pr.title = str(v.get("title") or pr.title)
        if pr.runs:
            out.append(pr)
    return out


def _interval(c: dict[str, Any]) -> str:
    iv = c.get("interval") or c.get("ci") or c.get("ci95")
    if isinstance(iv, dict):
        iv = [iv.get("low", iv.get("lo")), iv.get("high", iv.get("hi"))]
    if isinstance(iv, list | tuple) and len(iv) == 2:
        return f"[{fmt(iv[0])}, {fmt(iv[1])}]"
    return ""


def copy_reports(pr: PaperRuns, out: Path, skipped: list[Skipped]) -> list[Page]:
    """Each run's report folder into the site. This machine's own reports are copied as
    they are (report.html and its matplotlib PNGs); an imported one gets only its images
    and JSON, and its page is rendered here from its verdicts (returned, to be written).
    A report folder holding a link or a device is skipped and named."""
    pages = []
    for r in pr.runs:
        dest = out / "papers" / slug(pr.paper) / str(r.number)
        try:
            if r.imported is not None:
                rel = f"papers/{slug(pr.paper)}/{r.number}/report.html"
                pages.append(render_imported(r.folder, dest, rel, pr.paper, r.number, r.verdicts, r.host))  # fmt: skip
            else:
                safe_copy.copy_tree(r.folder, dest)
        except (BadInput, OSError) as exc:
            shutil.rmtree(dest, ignore_errors=True)
            skipped.append(Skipped(str(r.folder), f"report not copied into the site ({exc})"))
    return pages


def report_link(pr: PaperRuns, r: Run) -> str:
    own = r.imported is None and (r.folder / "report.html").is_file()
    name = "report.html" if own or r.imported is not None else "verdicts.json"
    return f"{slug(pr.paper)}/{r.number}/{name}"


def paper_page(pr: PaperRuns) -> Page:
    ids = pr.claim_ids
    head = ["run", "machine", "commit", "started", "mode", *ids]
    rows, attrs = [], []
    for r in pr.runs:
        by_id = {str(c.get("id")): c for c in r.claims}
        commit = (r.commit or "—")[:10] + (" (dirty)" if r.dirty else "")
        link = report_link(pr, r)
        cells = [
            f"<a href='{esc(link)}'>#{r.number}</a>" + (" <i>imported</i>" if r.imported else ""),
            esc(r.host),
            f"<code>{esc(commit)}</code>",
            esc(r.verdicts.get("started")),
            "quick" if r.verdicts.get("quick") else "full",
        ]
        for cid in ids:
            c = by_id.get(cid)
            if c is None:
                cells.append("<span class='na'>not checked</span>")
                continue
            verdict = str(c.get("verdict", "?"))
            iv = _interval(c)
            cells.append(
                f"<a class='cell {VERDICT_CLASS.get(verdict, 'other')}' "
                f"href='{esc(link)}#{esc(cid)}' data-claim='{esc(cid)}' data-run='{r.number}' "
                f"title='{esc(c.get('detail'))}'>{esc(verdict)}</a><br><small>"
                f"{esc(c.get('ours'))}{' ' + esc(iv) if iv else ''}</small>"
            )
        rows.append(cells)
        attrs.append(f"data-host='{esc(r.host)}' class='run'")
    latest = pr.runs[-1]
    legend = []
    for c in latest.claims:
        legend.append(
            f"<li><b>{esc(c.get('id'))}</b>: {esc(str(c.get('statement', '')).strip())}"
            f"{' — paper: ' + esc(c.get('paper')) if c.get('paper') else ''}</li>"
        )
    body = (
        f"<p>{len(pr.runs)} reproduction run(s) × {len(ids)} claims. Each cell links to "
        "that run's report (its matplotlib plots included); hover a cell for the detail.</p>"
        f"<div class='grid'>{table(head, rows, attrs)}</div>"
        f"<h2>Claims (as of run #{latest.number})</h2><ul>{''.join(legend)}</ul>"
    )
    data = {"kind": "paper", "paper": pr.paper, "runs": len(pr.runs), "claims": ids}
    hosts = sorted({r.host for r in pr.runs})
    return Page(f"papers/{slug(pr.paper)}.html", pr.title, body, data, hosts=hosts)


def latest_verdicts(pr: PaperRuns) -> dict[str, Any]:
    r = pr.runs[-1]
    counts = Counter(str(c.get("verdict")) for c in r.claims)
    return {"run": r.number, "host": r.host, "counts": dict(counts), "claims": len(r.claims)}
