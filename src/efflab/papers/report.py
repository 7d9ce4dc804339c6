"""Reproduction reports: Markdown + HTML + one matplotlib PNG per claim.

Written to results/reproductions/<paper>/<n>/ by building the whole folder under a
temporary name and renaming it into place, so a crash or a concurrent run never
leaves a half-written report, and an existing report is never overwritten. The plot
of a claim shows the metric it is about for every point of the experiment (median,
whiskers min–max over repetitions), with the points the claim selects highlighted.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from efflab.core import layout
from efflab.papers import capabilities, claims
from efflab.papers.evaluate import EvalError, rows
from efflab.papers.outcome import Check, ClaimResult, PaperResult
from efflab.results import render, tables

MAX_ROWS = 24  # more points than this: plot only the selected ones


def reports_dir(repo: Path, paper_id: str) -> Path:
    return layout.reports_dir(repo, paper_id)


def report_numbers(repo: Path, paper_id: str) -> list[int]:
    return render.numbers(reports_dir(repo, paper_id))


def _shown(v: Any) -> str | None:
    """A parameter value for a label; missing (the point does not set it) is None."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _labels(data: pd.DataFrame) -> list[str]:
    """`k=v` per point, leaving out parameters that are the same on every plotted row."""
    params = [c for c in data.columns if c not in tables.STAT_COLUMNS]
    shown = {p: [_shown(v) for v in data[p]] for p in params}
    varying = [p for p in params if len(set(shown[p])) > 1]
    out = []
    for i in range(len(data)):
        text = ", ".join(f"{p}={shown[p][i]}" for p in varying if shown[p][i] is not None)
        text = text or "(single point)"
        out.append(text if len(text) <= 60 else text[:59] + "…")
    return out


def plot_claim(cr: ClaimResult, tabs: dict[str, pd.DataFrame], out: Path) -> bool:
    """One horizontal bar panel per (experiment, metric) the claim reads; False if no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str], list[claims.Select]] = {}
    for s in claims.selections(cr.claim.condition):
        groups.setdefault((s.experiment, s.metric), []).append(s)
    panels = []
    for (exp, metric), sels in groups.items():
        df = tabs.get(exp)
        if df is None or df.empty:
            continue
        data = df[df["metric"] == metric]
        hit: set[int] = set()
        for s in sels:
            try:
                hit |= set(rows(s, tabs).index)
            except EvalError:
                pass
        if len(data) > MAX_ROWS:
            data = data.loc[sorted(hit)]
        if not data.empty:
            panels.append((exp, metric, data, hit))
    if not panels:
        return False
    heights = [0.32 * len(p[2]) + 1.3 for p in panels]
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(8, sum(heights)), gridspec_kw={"height_ratios": heights}
    )
    axes = [axes] if len(panels) == 1 else list(axes)
    for ax, (exp, metric, data, hit) in zip(axes, panels, strict=True):
        med = data["median"].astype(float).to_numpy()
        lo = (med - data["min"].astype(float).to_numpy()).clip(min=0)
        hi = (data["max"].astype(float).to_numpy() - med).clip(min=0)
        colors = ["tab:orange" if i in hit else "tab:gray" for i in data.index]
        y = list(range(len(data)))[::-1]
        ax.barh(y, med, xerr=[lo, hi], color=colors, capsize=3, ecolor="black")
        for yi, m in zip(y, med, strict=True):
            ax.annotate(
                claims.fmt(float(m)),
                (m, yi),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        ax.set_yticks(y, _labels(data), fontsize=8)
        unit = str(data["unit"].iloc[0])
        ax.set_title(f"{metric} [{unit}] · {exp}", fontsize=10)
        ns = sorted({int(n) for n in data["n"]})
        n_text = f"n={ns[0]}" if len(ns) == 1 else f"n={ns[0]}–{ns[-1]}"
        ax.set_xlabel(f"median per point; whiskers min–max over {n_text} repetitions", fontsize=8)
        ax.margins(x=0.12)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{cr.claim.id}: {cr.verdict} (orange = selected by the claim)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return True


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _experiments(repo: Path, res: PaperResult) -> list[dict[str, Any]]:
    out = []
    for name, run in res.runs.items():
        r = run.result
        commit, dirty, dirty_files = None, None, []
        if r is not None and r.version:
            m = tables.manifest(repo, name, r.version)
            commit, dirty = m.get("git_commit"), m.get("git_dirty")
            dirty_files = m.get("git_dirty_files") or []
        out.append(
            {
                "experiment": name,
                "overrides": run.overrides,
                "table_version": None if r is None else r.version,
                "jobs_run": 0 if r is None else r.jobs_run,
                "git_commit": commit,
                "git_dirty": dirty,
                "git_dirty_files": dirty_files,
                "wall_s": round(run.wall_s, 1),
                "runtime": run.runtime,
                "failures": [] if r is None else r.failures,
                "error": run.error,
                "timing": bool(run.samples and run.samples.timing),
                "contended_records": 0 if run.samples is None else run.samples.contended,
                "remeasured": run.remeasured,
                "still_contended": run.still_contended,
                "remeasure_stop": run.remeasure_stop,
                "not_applicable": run.not_applicable or None,
            }
        )
    return out


RULES = (
    "reproduced: the whole 95% interval (percentile bootstrap over repetitions) satisfies "
    "the condition; not reproduced: the whole interval violates it; inconclusive: it "
    "straddles, or a timing-sensitive point has fewer than 3 repetitions. Each counted "
    "claim's control (the mechanism absent) and automatic placebo (both sides from one "
    "arm) must fail; a claim that holds on either is true by construction and shown as a "
    "sanity check; one that holds while a control or placebo is undecided is "
    "inconclusive. Sanity checks are shown, never counted. Every threshold says whether "
    "the paper or we set it."
)


def _threshold_text(t: dict[str, Any]) -> str:
    return f"{t['value']:g} ({t['source']}: {t['basis']})"


def summary(res: PaperResult, repo: Path | None = None) -> dict[str, Any]:
    """The machine-readable report (also verdicts.json and `reproduce --json`)."""
    p = res.paper
    return {
        "paper": p.id,
        "title": p.title,
        "quick": res.quick,
        "started": res.started,
        "reproduced": res.ok,
        "scale": None if p.scale is None else {"paper": p.scale.paper, "ours": p.scale.ours},
        "counted": len(res.counted),
        "sanity_by_construction": sum(bool(r.by_construction) for r in res.results),
        "counted_reproduced": sum(r.outcome.status == claims.PASS for r in res.counted),
        "rules": RULES,
        "machine": capabilities.this_machine().summary(),
        "report_dir": None if res.report_dir is None else str(res.report_dir),
        "claims": [
            {
                "id": r.claim.id,
                "statement": r.claim.statement,
                "condition": claims.render(r.claim.condition),
                "paper": None if r.claim.paper is None else r.claim.paper.text,
                "paper_value": None if r.claim.paper is None else r.claim.paper.value,
                "ours": r.outcome.ours,
                "value": r.outcome.value,
                "low": r.outcome.low,
                "high": r.outcome.high,
                "n_min": r.outcome.n_min,
                "interval_method": r.outcome.method,
                "verdict": r.verdict,
                "kind": r.kind,
                "declared_kind": r.claim.kind,
                "by_construction": r.by_construction or None,
                "controlled": r.controlled,
                "control": _control(r),
                "placebos": [_check(p) for p in r.placebos],
                "requires": None if r.claim.requires is None else r.claim.requires.render(),
                "cites": r.claim.cites,
                "thresholds": [
                    {"value": t.value, "source": t.source, "basis": t.basis, "path": t.path}
                    for t in claims.thresholds(r.claim.condition)
                ],
                "detail": r.outcome.detail,
                "note": r.claim.note,
            }
            for r in res.results
        ],
        "experiments": _experiments(repo, res) if repo else [],
    }


CHECK_OUTCOMES = {
    claims.PASS: "holds",
    claims.FAIL: "fails",
    claims.INCONCLUSIVE: "undecided",
    claims.ERROR: "error",
}


def _check(c: Check) -> dict[str, Any]:
    o = c.outcome
    return {
        "label": c.label,
        "condition": c.condition,
        "expect": c.expect,
        "outcome": CHECK_OUTCOMES.get(o.status, o.status),
        "as_expected": c.as_expected,
        "ours": o.ours,
        "value": o.value,
        "low": o.low,
        "high": o.high,
        "detail": o.detail,
    }


def _control(r: ClaimResult) -> dict[str, Any] | None:
    ctl = r.claim.control
    if ctl is None:
        return None
    if ctl.none:
        return {"none": ctl.why}
    if r.control is None:  # the claim itself was not evaluated (its experiment failed)
        return {
            "why": ctl.why,
            "change": ctl.render(),
            "label": "control",
            "condition": "",
            "expect": "fails",
            "outcome": CHECK_OUTCOMES[claims.ERROR],
            "as_expected": False,
            "ours": "—",
            "value": None,
            "low": None,
            "high": None,
            "detail": "the claim was not evaluated, so neither was its control",
        }
    return {"why": ctl.why, "change": ctl.render(), **_check(r.control)}


def check_text(c: dict[str, Any]) -> str:
    """`control: precision: int8 → fp32: not reproduced (as required), 1.02 x`."""
    want = "must hold" if c["expect"] == "holds" else "must fail"
    ok = "as required" if c["as_expected"] else "NOT as required"
    return f"{c['label']} — {c['outcome']} ({want}: {ok}); {c['ours']}"


def control_cell(c: dict[str, Any]) -> str:
    """The verdict table's control column: its outcome, or why there is none."""
    ctl = c.get("control")
    if ctl is None:
        return "no control declared"
    if "none" in ctl:
        return "uncontrolled"
    return f"{ctl['outcome']} ({ctl['ours']})"


def machine_text(m: dict[str, Any] | None) -> str:
    """`AMD EPYC, 2 usable cores; has avx2, fma; lacks avx512_bf16, ...; no accelerator`."""
    if not m:
        return "not recorded"
    acc = ", ".join(m["accelerators"]) or "no accelerator"
    return (
        f"{m['cpu_model'] or 'unknown CPU'}, {m['usable_cores']} usable cores; "
        f"has {', '.join(m['cpu_features']) or 'none of the listed features'}; "
        f"lacks {', '.join(m['cpu_features_absent']) or 'none'}; {acc} "
        "(read from /proc/cpuinfo flags, os.sched_getaffinity, /proc/driver/nvidia/gpus)"
    )


def headline(s: dict[str, Any]) -> str:
    """`3 of 4 claims reproduced (1 inconclusive); 1 sanity check`."""
    counted = [c for c in s["claims"] if c["kind"] == "claim" and c["verdict"] != "not applicable"]
    n_ok = sum(c["verdict"] == "reproduced" for c in counted)
    text = f"{n_ok} of {len(counted)} claims reproduced"
    inc = sum(c["verdict"] == "inconclusive" for c in counted)
    if inc:
        text += f" ({inc} inconclusive)"
    na = sum(c["verdict"] == "not applicable" for c in s["claims"] if c["kind"] == "claim")
    if na:
        text += f"; {na} not applicable on this machine"
    n_s = sum(c["kind"] == "sanity" for c in s["claims"])
    if n_s:
        text += f"; {n_s} sanity check{'s' if n_s > 1 else ''} (not counted"
        by = sum(bool(c.get("by_construction")) for c in s["claims"])
        text += f", {by} by construction)" if by else ")"
    return text


def _contended(e: dict[str, Any]) -> str:
    if not e.get("timing"):
        return "not timed"
    text = f"{e['contended_records']} record(s)"
    if e["remeasured"]:
        text += f"; re-measured {e['remeasured']}"
    if e["still_contended"]:
        text += f"; {e['still_contended']} still contended"
        if e.get("remeasure_stop"):
            text += f" ({e['remeasure_stop']})"
    return text


def _checks_lines(c: dict[str, Any]) -> list[str]:
    """Markdown bullets: why the claim can fail (control, placebos) or why it cannot."""
    out = []
    if c.get("by_construction"):
        out.append(f"- **By construction** (shown as a sanity check): {c['by_construction']}")
    ctl = c.get("control")
    if ctl is None:
        out.append("- Control: none declared (uncontrolled)")
    elif "none" in ctl:
        out.append(f"- Control: none, uncontrolled — {ctl['none']}")
    else:
        out.append(f"- Control ({ctl['why']}): {check_text(ctl)}")
        out.append(f"  - `{ctl['condition']}`")
    for p in c.get("placebos") or []:
        out.append(f"- {check_text(p)}")
    return out


def markdown(s: dict[str, Any], paper: Any, plots: dict[str, str]) -> str:
    head = headline(s)
    lines = [
        f"# Reproduction: {paper.title}",
        "",
        f"{', '.join(paper.authors)} · {paper.venue} {paper.year} · <{paper.link}>",
        "",
        f"Mode: {'quick' if s['quick'] else 'full'} · started {s['started']} · **{head}**",
        "",
    ]
    if paper.summary:
        lines += [paper.summary.strip(), ""]
    if s["scale"]:
        lines += [f"- Paper's scale: {s['scale']['paper']}", f"- Ours: {s['scale']['ours']}", ""]
    lines += [f"Machine: {machine_text(s.get('machine'))}", ""]
    lines += [f"Verdict rules: {s['rules']}", ""]
    lines += [
        "## Verdicts",
        "",
        "| claim | kind | paper's value | ours [95% interval] | verdict | control |",
        "|---|---|---|---|---|---|",
    ]
    for c in s["claims"]:
        lines.append(
            f"| {c['id']} | {c['kind']} | {_cell(c['paper'] or '—')} | {_cell(c['ours'])} "
            f"| **{c['verdict']}** | {_cell(control_cell(c))} |"
        )
    lines += ["", "## Claims", ""]
    for c in s["claims"]:
        lines += [f"### {c['id']} — {c['verdict']}", "", f"> {c['statement'].strip()}", ""]
        lines.append(f"- Condition: `{c['condition']}`")
        if c["cites"]:
            lines.append(f"- The same check as {c['cites']} (defined there, counted once)")
        for t in c["thresholds"]:
            lines.append(f"- Threshold {_threshold_text(t)}")
        if c["paper"]:
            lines.append(f"- Paper: {c['paper']}")
        lines += [f"- Ours: {c['ours']}", f"- Detail: {c['detail']}"]
        lines += _checks_lines(c)
        if c["note"]:
            lines.append(f"- Note: {c['note'].strip()}")
        if c["id"] in plots:
            lines += ["", f"![{c['id']}]({plots[c['id']]})"]
        lines.append("")
    lines += [
        "## Experiments",
        "",
        "| experiment | overrides | table | jobs run | runtime | wall s | contended | failures |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for e in s["experiments"]:
        ver = f"v{e['table_version']}" if e["table_version"] else "none"
        if e["git_commit"]:
            ver += f" @ {e['git_commit'][:10]}{' (dirty)' if e['git_dirty'] else ''}"
            files = e.get("git_dirty_files") or []
            ver += f": {', '.join(files[:5])}{' …' if len(files) > 5 else ''}" if files else ""
        fails = "; ".join(e["failures"]) or e["error"] or "none"
        if e.get("not_applicable"):
            fails = f"not run: needs {e['not_applicable']}"
        ov = json.dumps(e["overrides"]) if e["overrides"] else "—"
        lines.append(
            f"| {e['experiment']} | `{ov}` | {ver} | {e['jobs_run']} | {e['runtime']} "
            f"| {e['wall_s']} | {_contended(e)} | {_cell(fails)} |"
        )
    return "\n".join(lines) + "\n"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
    ".reproduced{color:#17672c;font-weight:bold}.not-reproduced{color:#a31515;font-weight:bold}"
    ".error{color:#8a5300;font-weight:bold}.inconclusive{color:#555;font-weight:bold}"
    "code{background:#f4f4f4}img{max-width:100%}"
    "blockquote{border-left:3px solid #ccc;margin-left:0;padding-left:1em;color:#444}"
)


def to_html(s: dict[str, Any], paper: Any, plots: dict[str, str]) -> str:
    e = html.escape
    head = headline(s)
    cls = {
        "reproduced": "reproduced",
        "not reproduced": "not-reproduced",
        "inconclusive": "inconclusive",
        "error": "error",
        "not applicable": "inconclusive",  # grey: neither a pass nor a failure
    }
    out = [
        f"<h1>Reproduction: {e(paper.title)}</h1>",
        f"<p>{e(', '.join(paper.authors))} · {e(paper.venue)} {paper.year} · "
        f"<a href='{e(paper.link)}'>{e(paper.link)}</a></p>",
        f"<p>Mode: {'quick' if s['quick'] else 'full'} · started {e(s['started'])} · "
        f"<b>{e(head)}</b></p>",
    ]
    if paper.summary:
        out.append(f"<p>{e(paper.summary.strip())}</p>")
    if s["scale"]:
        out.append(
            f"<p>Paper's scale: {e(s['scale']['paper'])}<br>Ours: {e(s['scale']['ours'])}</p>"
        )
    out.append(f"<p>Machine: {e(machine_text(s.get('machine')))}</p>")
    out.append(f"<p>Verdict rules: {e(s['rules'])}</p>")
    out.append("<h2>Verdicts</h2><table><tr><th>claim</th><th>kind</th><th>paper's value</th>")
    out.append("<th>ours [95% interval]</th><th>verdict</th><th>control</th></tr>")
    for c in s["claims"]:
        out.append(
            f"<tr><td><a href='#{e(c['id'])}'>{e(c['id'])}</a></td><td>{e(c['kind'])}</td>"
            f"<td>{e(c['paper'] or '—')}</td>"
            f"<td>{e(c['ours'])}</td><td class='{cls[c['verdict']]}'>{e(c['verdict'])}</td>"
            f"<td>{e(control_cell(c))}</td></tr>"
        )
    out.append("</table><h2>Claims</h2>")
    for c in s["claims"]:
        out.append(
            f"<h3 id='{e(c['id'])}'>{e(c['id'])} — "
            f"<span class='{cls[c['verdict']]}'>{e(c['verdict'])}</span></h3>"
            f"<blockquote>{e(c['statement'].strip())}</blockquote><ul>"
            f"<li>Condition: <code>{e(c['condition'])}</code></li>"
        )
        if c["cites"]:
            out.append(f"<li>The same check as {e(c['cites'])} (defined there, counted once)</li>")
        for t in c["thresholds"]:
            out.append(f"<li>Threshold {e(_threshold_text(t))}</li>")
        if c["paper"]:
            out.append(f"<li>Paper: {e(c['paper'])}</li>")
        out.append(f"<li>Ours: {e(c['ours'])}</li><li>Detail: {e(c['detail'])}</li>")
        out += [f"<li>{e(line[2:].strip())}</li>" for line in _checks_lines(c)]
        if c["note"]:
            out.append(f"<li>Note: {e(c['note'].strip())}</li>")
        out.append("</ul>")
        if c["id"] in plots:
            out.append(f"<img src='{e(plots[c['id']])}' alt='{e(c['id'])}'>")
    out.append("<h2>Experiments</h2><table><tr><th>experiment</th><th>overrides</th>")
    out.append(
        "<th>table</th><th>jobs run</th><th>runtime</th><th>wall s</th><th>contended</th>"
        "<th>failures</th></tr>"
    )
    for x in s["experiments"]:
        ver = f"v{x['table_version']}" if x["table_version"] else "none"
        fails = "; ".join(x["failures"]) or x["error"] or "none"
        out.append(
            f"<tr><td>{e(x['experiment'])}</td><td><code>{e(json.dumps(x['overrides']))}</code>"
            f"</td><td>{ver}</td><td>{x['jobs_run']}</td><td>{e(x['runtime'])}</td><td>{x['wall_s']}</td>"
            f"<td>{e(_contended(x))}</td><td>{e(fails)}</td></tr>"
        )
    out.append("</table>")
    return render.html_page(paper.title, "\n".join(out), CSS)


def write_report(repo: Path, res: PaperResult) -> Path:
    """Build the report in a temp folder, then rename it to the next free number."""
    root = reports_dir(repo, res.paper.id)
    tabs = res.tables()
    s = summary(res, repo)

    def fill(tmp: Path, n: int) -> None:
        if not (tmp / "report.md").exists():
            (tmp / "plots").mkdir()
            plots = {}
            for cr in res.results:
                rel = f"plots/{cr.claim.id}.png"
                if plot_claim(cr, tabs, tmp / rel):
                    plots[cr.claim.id] = rel
            (tmp / "report.md").write_text(markdown(s, res.paper, plots))
            (tmp / "report.html").write_text(to_html(s, res.paper, plots))
        s["report_dir"] = str(root / str(n))
        (tmp / "verdicts.json").write_text(json.dumps(s, indent=2, default=str) + "\n")

    return root / str(render.write_numbered(root, fill))
