"""Leaderboard rendering: Markdown, self-contained HTML, JSON and the objectives plot.

Why apart from efflab.tournaments.leaderboard: that module decides what is ranked and
how; this one only shows a built board (`build`'s dict), so the rules live in one place.
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.specio import atomic_write_text
from efflab.results import render as page
from efflab.tournaments.spec import Tournament

MAX_REJECTED_SHOWN = 20


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _cell(r: dict[str, Any], m: str) -> str:
    """The value and, when the repetitions spread, its interval."""
    v, iv = r["metrics"].get(m, ""), (r.get("intervals") or {}).get(m)
    if iv and iv["hi"] > iv["lo"]:
        return f"{_fmt(v)} [{iv['lo']:.4g}, {iv['hi']:.4g}]"
    return _fmt(v)


def _extra_md(b: dict[str, Any]) -> list[str]:
    """Stale entries, refused replacements and attempts per participant."""
    out: list[str] = []
    if b.get("stale"):
        out += ["", f"## Stale ({len(b['stale'])}): scored under an older spec, not ranked", ""]
        out += ["| seq | participant | entry | scored under |", "|---|---|---|---|"]
        for r in b["stale"]:
            out.append(f"| {r['seq']} | {_md_cell(str(r['participant']))} | {_md_cell(str(r['entry']))} | `{str(r['scoring_sha256'])[:12]}` |")  # fmt: skip
        out.append("")
        out.append("`efflab tournament reverify` measures them again under the current spec.")
    if b.get("refused"):
        out += ["", "## Refused replacements", ""]
        out += [f"- entry {r['seq']}: {_md_cell(r['row'])}: {r['reason']}" for r in b["refused"]]
    if b.get("attempts"):
        out += ["", "## Attempts per participant", "", "| participant | attempts | accepted | rejected | infrastructure-error |", "|---|---|---|---|---|"]  # fmt: skip
        for who, c in sorted(b["attempts"].items()):
            out.append(f"| {_md_cell(who)} | {c['attempts']} | {c.get('accepted', 0)} | {c.get('rejected', 0)} | {c.get('infrastructure-error', 0)} |")  # fmt: skip
    return out


def _arrow(t: Tournament, m: str) -> str:
    return "↓" if t.better(m) == "lower" else "↑"


def _table(b: dict[str, Any], t: Tournament) -> tuple[list[str], list[list[str]]]:
    head = ["#", "rank range", "participant", "entry", "front"]
    if b["ranking"] == "weighted":
        head.append("score")
    head += [f"{m} [{b['units'][m]}] {_arrow(t, m)}" for m in b["metrics"]]
    head += ["inputs", "flags", "submitted"]
    rows = []
    for r in b["entries"]:
        lo, hi = r["rank_range"]
        span = f"{lo}" if lo == hi else f"{lo}–{hi} (tie)"
        who = r["participant"] + (" (baseline)" if r.get("baseline") else "")
        cells = [str(r["position"]), span, who, r["entry"], str(r["front"])]
        if b["ranking"] == "weighted":
            cells.append(f"{r['score']:.3f}")
        cells += [_cell(r, m) for m in b["metrics"]]
        inputs = json.dumps(r["inputs"], sort_keys=True) + (" + script" if r["script"] else "")
        cells += [inputs, "⚑ " + "; ".join(r["flags"]) if r["flags"] else "", r["time"][:16]]
        rows.append(cells)
    return head, rows


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(b: dict[str, Any], t: Tournament, plot: str | None = "front.png") -> str:
    head, rows = _table(b, t)
    out = [
        f"# Leaderboard: {b['title']}",
        "",
        f"Tournament `{b['tournament']}` ({b['status']}). Ranking: {b['rule']}.",
        f"Constraints: {', '.join(b['constraints']) or 'none'}. Every number was measured "
        f"by efflab in a sealed container ({b['verification']['aggregate']} of "
        f"{b['verification']['repetitions']} repetitions); claimed numbers are only flagged. "
        "Brackets: the interval of the repetitions; a rank range wider than one place "
        "is a statistical tie.",
        "",
    ]
    if rows:
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
    else:
        out.append("No accepted submissions yet.")
    if plot and rows:
        out += ["", f"![objectives]({plot})"]
    if b["rejected"]:
        shown = b["rejected"][-MAX_REJECTED_SHOWN:]
        out += [
            "",
            f"## Not ranked: rejected or verifier errors ({len(b['rejected'])}; latest {len(shown)})",
            "",
        ]
        out += [
            "| seq | participant | entry | verdict | stage | reason |",
            "|---|---|---|---|---|---|",
        ]
        for r in shown:
            cells = [
                str(r["seq"]),
                str(r["participant"]),
                str(r["entry"]),
                str(r.get("verdict", "rejected")),
                str(r["stage"]),
            ]
            out.append("| " + " | ".join(_md_cell(c) for c in [*cells, r["reason"] or ""]) + " |")
    out += _extra_md(b)
    head_hash = b["ledger"]["head"]
    out += ["", f"Ledger: {b['ledger']['entries']} entries, verified; head `{head_hash}`."]
    return "\n".join(out) + "\n"


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "font-size:14px}th{background:#f4f4f4}.flag{color:#b00}.front1{background:#eef8ee}"
    "code{font-size:12px}img{max-width:100%}"
)


def to_html(b: dict[str, Any], t: Tournament, png: bytes | None) -> str:
    """Self-contained HTML (the plot is embedded), so it can be mailed or redirected."""
    e = html.escape
    head, rows = _table(b, t)
    out = [
        f"<h1>Leaderboard: {e(b['title'])}</h1>",
        f"<p>Tournament <code>{e(b['tournament'])}</code> ({e(b['status'])}). "
        f"Ranking: {e(b['rule'])}.</p><p>Constraints: "
        f"{e(', '.join(b['constraints']) or 'none')}. Every number was measured by efflab "
        f"in a sealed container ({e(b['verification']['aggregate'])} of "
        f"{b['verification']['repetitions']} repetitions); claimed numbers are only flagged.</p>",
    ]
    if rows:
        out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>")
        for r, cells in zip(b["entries"], rows, strict=True):
            cls = " class='front1'" if r["front"] == 1 else ""
            tds = "".join(
                f"<td class='flag'>{e(c)}</td>" if c.startswith("⚑") else f"<td>{e(c)}</td>"
                for c in cells
            )
            out.append(f"<tr{cls}>{tds}</tr>")
        out.append("</table>")
    else:
        out.append("<p>No accepted submissions yet.</p>")
    if png:
        data = base64.b64encode(png).decode()
        out.append(f"<img alt='objectives' src='data:image/png;base64,{data}'>")
    if b["rejected"]:
        shown = b["rejected"][-MAX_REJECTED_SHOWN:]
        out.append(f"<h2>Rejected ({len(b['rejected'])}; latest {len(shown)})</h2><table>")
        out.append("<tr><th>seq</th><th>participant</th><th>entry</th><th>stage</th>")
        out.append("<th>reason</th></tr>")
        for r in shown:
            cells = [r["seq"], r["participant"], r["entry"], r["stage"], r["reason"]]
            out.append("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in cells) + "</tr>")
        out.append("</table>")
    out.append(
        f"<p>Ledger: {b['ledger']['entries']} entries, verified; head "
        f"<code>{e(str(b['ledger']['head']))}</code>.</p>"
    )
    return page.html_page(f"Leaderboard: {b['title']}", "\n".join(out), CSS)


def plot(b: dict[str, Any], t: Tournament, out: Path) -> bool:
    """Objective scatter with the Pareto front drawn; False when there is nothing to plot."""
    if not b["entries"]:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    objs = [o.metric for o in t.objectives]
    x = objs[0]
    y = objs[1] if len(objs) > 1 else next((c.metric for c in t.constraints), None)
    rows = b["entries"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [r["metrics"][x] for r in rows]
    ys = [r["metrics"][y] for r in rows] if y else [r["position"] for r in rows]
    colors = ["tab:green" if r["front"] == 1 else "tab:gray" for r in rows]
    ax.scatter(xs, ys, c=colors, s=46, zorder=3, edgecolors="black", linewidths=0.5)
    for r, xi, yi in zip(rows, xs, ys, strict=True):
        label = f"#{r['position']} {r['participant']}/{r['entry']}" + (" ⚑" if r["flags"] else "")
        ax.annotate(label, (xi, yi), xytext=(5, 4), textcoords="offset points", fontsize=7)
    if y in objs:  # the front as a staircase: the boundary of what it dominates
        front = sorted((xi, yi) for r, xi, yi in zip(rows, xs, ys, strict=True) if r["front"] == 1)
        where = "post" if t.objectives[0].direction == "minimize" else "pre"
        ax.step(*zip(*front, strict=True), where=where, color="tab:green", lw=1.5, zorder=2,
                label="Pareto front")  # fmt: skip
    for c in t.constraints:
        if c.metric == y:
            ax.axhline(c.value, color="tab:red", ls="--", lw=1, label=c.text())
        elif c.metric == x:
            ax.axvline(c.value, color="tab:red", ls="--", lw=1, label=c.text())
    ax.set_xlabel(f"{x} [{t.unit(x)}] ({t.better(x)} is better)")
    ax.set_ylabel(f"{y} [{t.unit(y)}] ({t.better(y)} is better)" if y else "position")
    ax.set_title(f"{t.id}: {len(rows)} ranked entries (green: Pareto front)", fontsize=10)
    ax.margins(x=0.25, y=0.12)  # room for the labels right of each point
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110, format="png")
    plt.close(fig)
    return True


@dataclass
class Written:
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)


def write(repo: Path, t: Tournament, b: dict[str, Any]) -> Written:
    """results/tournaments/<id>/leaderboard/: leaderboard.{md,html,json} + front.png."""
    folder = t.root(repo) / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    w = Written(folder)
    data = json.dumps(b, indent=2, default=str) + "\n"
    names = {"md": "leaderboard.md", "html": "leaderboard.html", "json": "leaderboard.json"}
    if (folder / "leaderboard.json").exists() and (folder / "leaderboard.json").read_text() == data:
        w.files = {k: folder / v for k, v in names.items() if (folder / v).exists()}
        if len(w.files) == 3:  # nothing changed since the last write: no new plot needed
            if (folder / "front.png").exists():
                w.files["plot"] = folder / "front.png"
            return w
    png_path = folder / "front.png"
    tmp = folder / f".front.{os.getpid()}.tmp"  # concurrent writers never share a temp file
    has_plot = plot(b, t, tmp)
    if has_plot:
        tmp.replace(png_path)
        w.files["plot"] = png_path
    else:
        png_path.unlink(missing_ok=True)
    png = png_path.read_bytes() if has_plot else None
    texts = {
        "md": to_markdown(b, t, "front.png" if has_plot else None),
        "html": to_html(b, t, png),
        "json": data,
    }
    for fmt in ("md", "html", "json"):  # json last: it marks a complete write
        atomic_write_text(folder / names[fmt], texts[fmt])
        w.files[fmt] = folder / names[fmt]
    return w
