"""Leaderboards: the ledger's accepted verdicts, ranked (Pareto front or weighted).

Why from the ledger: it is the tamper-evident record of what the verifier measured.
The leaderboard reads only verified ledger entries (a broken chain is an error, not a
silently wrong board) and only measured metrics; claimed numbers appear as flags.

Ranking, documented once here and printed on every board:
- constraints were checked at verification: a violating submission is rejected and
  never ranked;
- one row per (participant, entry): its latest accepted submission;
- pareto: non-dominated sorting into fronts (front 1 = the Pareto front: no other
  entry is at least as good on every objective and better on one); within a front,
  entries are ordered by the tie-break objectives in order (best first), then by the
  earlier submission (lower ledger seq);
- weighted: each objective is min-max normalised over the ranked entries (best = 1,
  worst = 0; all equal = 1) and combined with the spec's weights; higher score first,
  then the same tie-break. Fronts are still computed (for the plot).
"""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.specio import atomic_write_text
from efflab.tournaments.baseline import is_baseline
from efflab.tournaments.ledger import Ledger
from efflab.tournaments.spec import Objective, Tournament

MAX_REJECTED_SHOWN = 20


@dataclass
class Row:
    seq: int
    submission: str
    participant: str
    entry: str
    time: str
    metrics: dict[str, float]
    inputs: dict[str, Any]
    flags: list[str]
    script: bool
    front: int = 0
    position: int = 0
    score: float | None = None


def dominates(a: dict[str, float], b: dict[str, float], objectives: list[Objective]) -> bool:
    """a is at least as good as b on every objective and strictly better on one."""
    ge = all(o.sign * a[o.metric] >= o.sign * b[o.metric] for o in objectives)
    gt = any(o.sign * a[o.metric] > o.sign * b[o.metric] for o in objectives)
    return ge and gt


def pareto_fronts(points: list[dict[str, float]], objectives: list[Objective]) -> list[int]:
    """Front number (1 = non-dominated) of each point, by repeated peeling."""
    front = [0] * len(points)
    left = set(range(len(points)))
    k = 0
    while left:
        k += 1
        layer = {
            i for i in left if not any(dominates(points[j], points[i], objectives) for j in left)
        }
        for i in layer:
            front[i] = k
        left -= layer
    return front


def weighted_scores(
    points: list[dict[str, float]], objectives: list[Objective], weights: dict[str, float]
) -> list[float]:
    """Weighted mean of min-max normalised objectives (1 = best of the field)."""
    total = sum(weights[o.metric] for o in objectives)
    scores = [0.0] * len(points)
    for o in objectives:
        vals = [o.sign * p[o.metric] for p in points]
        lo, hi = min(vals), max(vals)
        for i, v in enumerate(vals):
            norm = 1.0 if hi == lo else (v - lo) / (hi - lo)
            scores[i] += weights[o.metric] * norm / total
    return scores


def rank(t: Tournament, rows: list[Row]) -> list[Row]:
    """Rows ordered and numbered per the tournament's ranking (see module docstring)."""
    by_metric = {o.metric: o for o in t.objectives}
    pts = [r.metrics for r in rows]
    for r, f in zip(rows, pareto_fronts(pts, t.objectives), strict=True):
        r.front = f
    tie = [by_metric[m] for m in t.tie_break]

    def tie_key(r: Row) -> tuple[float, ...]:
        return tuple(-o.sign * r.metrics[o.metric] for o in tie) + (r.seq,)

    if t.ranking == "weighted":
        for r, s in zip(rows, weighted_scores(pts, t.objectives, t.weights), strict=True):
            r.score = s
        ordered = sorted(rows, key=lambda r: (-(r.score or 0.0), *tie_key(r)))
    else:
        ordered = sorted(rows, key=lambda r: (r.front, *tie_key(r)))
    for i, r in enumerate(ordered, 1):
        r.position = i
    return ordered


def ranking_rule(t: Tournament) -> str:
    tie = ", ".join(f"{m} ({t.better(m)} is better)" for m in t.tie_break)
    if t.ranking == "weighted":
        w = ", ".join(f"{m}×{t.weights[m]:g}" for m in t.weights)
        return (
            f"weighted score of min-max normalised objectives ({w}); ties by {tie}, "
            "then the earlier submission"
        )
    return f"Pareto front first, then later fronts; within a front by {tie}, then the earlier submission"


def build(repo: Path, t: Tournament) -> dict[str, Any]:
    """The leaderboard as data (raises LedgerTampered when the ledger doesn't verify)."""
    entries = Ledger(t.root(repo) / "ledger.jsonl").entries()
    latest: dict[tuple[str, str], Row] = {}
    rejected = []
    for e in entries:
        sub = e["submission"]
        if e["verdict"] != "accepted":
            rejected.append(
                {
                    "seq": e["seq"],
                    "submission": sub["id"],
                    "participant": sub.get("participant"),
                    "entry": sub.get("entry"),
                    "time": e["time"],
                    "stage": e.get("stage"),
                    "reason": e.get("reason"),
                }
            )
            continue
        if any(o.metric not in e["metrics"] for o in t.objectives):
            continue  # accepted under an older spec that measured other objectives
        latest[(sub["participant"], sub["entry"])] = Row(
            seq=e["seq"],
            submission=sub["id"],
            participant=sub["participant"],
            entry=sub["entry"],
            time=e["time"],
            metrics=e["metrics"],
            inputs=sub.get("inputs") or {},
            flags=e.get("flags") or [],
            script=bool(sub.get("archive")),
        )
    ranked = rank(t, list(latest.values()))
    shown = [m for m in [*(o.metric for o in t.objectives), *(c.metric for c in t.constraints)]]
    return {
        "tournament": t.id,
        "title": t.title,
        "status": t.status(),
        "ranking": t.ranking,
        "rule": ranking_rule(t),
        "objectives": [asdict(o) for o in t.objectives],
        "constraints": [c.text() for c in t.constraints],
        "metrics": list(dict.fromkeys(shown)),
        "units": {m: t.unit(m) for m in shown},
        "verification": {"repetitions": t.repetitions, "aggregate": t.aggregate},
        "entries": [asdict(r) for r in ranked],
        "rejected": rejected,
        "ledger": {"entries": len(entries), "head": entries[-1]["hash"] if entries else None},
    }


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _arrow(t: Tournament, m: str) -> str:
    return "↓" if t.better(m) == "lower" else "↑"


def _table(b: dict[str, Any], t: Tournament) -> tuple[list[str], list[list[str]]]:
    head = ["#", "participant", "entry", "front"]
    if b["ranking"] == "weighted":
        head.append("score")
    head += [f"{m} [{b['units'][m]}] {_arrow(t, m)}" for m in b["metrics"]]
    head += ["inputs", "flags", "submitted"]
    rows = []
    for r in b["entries"]:
        who = r["participant"] + (
            " (baseline)" if is_baseline(r["participant"], r["entry"]) else ""
        )
        cells = [str(r["position"]), who, r["entry"], str(r["front"])]
        if b["ranking"] == "weighted":
            cells.append(f"{r['score']:.3f}")
        cells += [_fmt(r["metrics"].get(m, "")) for m in b["metrics"]]
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
        f"{b['verification']['repetitions']} repetitions); claimed numbers are only flagged.",
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
        out += ["", f"## Rejected ({len(b['rejected'])}; latest {len(shown)})", ""]
        out += ["| seq | participant | entry | stage | reason |", "|---|---|---|---|---|"]
        for r in shown:
            cells = [str(r["seq"]), str(r["participant"]), str(r["entry"]), str(r["stage"])]
            out.append("| " + " | ".join(_md_cell(c) for c in [*cells, r["reason"] or ""]) + " |")
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
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(b['title'])}</title>",
        f"<style>{CSS}</style></head><body><h1>Leaderboard: {e(b['title'])}</h1>",
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
        f"<code>{e(str(b['ledger']['head']))}</code>.</p></body></html>"
    )
    return "\n".join(out) + "\n"


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
