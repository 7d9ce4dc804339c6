"""The nightly report: plain-text summary, summary.md/.json and an HTML trend dashboard.

`results/nightly/<n>/` holds summary.md, summary.json, index.html and one PNG per
(experiment, metric): the median of every point across the last nights (the x axis
names the night and its table version), regressions marked with a red cross and
improvements with a green triangle. The folder is built aside and renamed into
place, so a reader never sees half a dashboard. It only reads the history and the
run records; it judges nothing itself.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from efflab.core.layout import nightly_dir
from efflab.nightly import regression as regress
from efflab.nightly.changepoints import ChangePoint
from efflab.nightly.findings import Finding, Night
from efflab.nightly.history import (
    group_of,
    load_nights,
    point_label,
    read_history,
)
from efflab.results import render

ORDER = {v: i for i, v in enumerate(regress.VERDICTS)}


def _num(v: float) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _pct(v: float) -> str:
    if v is None or math.isnan(v):
        return "n/a"
    return f"{v:+.1%}" if math.isfinite(v) else ("+inf" if v > 0 else "-inf")


def _line(f: Finding) -> str:
    return (
        f"{f.experiment}  {f.label}  {f.metric}: {_pct(f.change)} "
        f"({_num(f.baseline_median)} -> {_num(f.current_median)} {f.unit}, {f.better} is better)"
        f"  p={_num(min(f.p_worse_adj, f.p_better_adj))} (Holm-adjusted)"
        f"  baseline {f.baseline_nights} nights/{f.n_baseline} runs vs {f.n_current}"
    )


def _counts(night: Night) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for f in night.findings:
        out.setdefault(f.experiment, {v: 0 for v in regress.VERDICTS})[f.verdict] += 1
    return out


def cp_line(c: ChangePoint) -> str:
    state = "OPEN" if c.open else ("accepted" if c.accepted else c.direction)
    return (
        f"{c.experiment}  {point_label(c.point)}  {c.metric}: {_pct(c.change)} at night "
        f"#{c.night} ({_num(c.mean_before)} -> {_num(c.mean_after)} {c.unit}, "
        f"{c.better} is better), commits {c.commits}, p={_num(c.p_value)}, "
        f"now {_pct(c.current_vs_before)} worse than before [{state}]"
    )


def _not_judged_line(f: Finding) -> str:
    why = (
        f.reset
        or "; ".join(f.notes)
        or ("first night of this point" if f.verdict == regress.NO_BASELINE else "")
    )
    moved = "" if f.verdict == regress.NO_BASELINE else f" moved {_pct(f.change)},"
    return f"{f.experiment}  {f.label}  {f.metric}: {f.verdict},{moved} {why}".rstrip(", ")


def text(night: Night) -> str:
    """What `efflab nightly` prints: regressions (night vs baseline, then open change
    points), then what could not be judged (underpowered, no baseline, resets), failures,
    improvements, all change points, counts."""
    regs = [f for f in night.findings if f.verdict == regress.REGRESSION]
    imps = [f for f in night.findings if f.verdict == regress.IMPROVEMENT]
    regs.sort(key=lambda f: -abs(f.change) if math.isfinite(f.change) else -math.inf)
    imps.sort(key=lambda f: -abs(f.change) if math.isfinite(f.change) else -math.inf)
    status = "FAILED" if night.exit_code else "ok"
    opened = night.open_change_points
    lines = [
        f"efflab nightly #{night.night} ({night.run_id}): {status} - "
        f"{len(regs)} regression(s), {len(opened)} open change point(s), "
        f"{len(night.not_judged)} not judged, {len(imps)} improvement(s), "
        f"{len(night.failures)} failure(s)" + (" [strict]" if night.strict else "")
    ]
    if regs:
        lines.append("\nREGRESSIONS")
        for f in regs:
            lines.append(f"  {_line(f)}")
            lines += [f"      {n}" for n in f.notes]
    if opened:
        lines.append("\nREGRESSIONS FOUND BY CHANGE POINTS (persistent shifts, not accepted)")
        lines += [f"  {cp_line(c)}" for c in opened]
    resets = [f for f in night.findings if f.reset]
    if resets:
        lines.append("\nBASELINE RESET (not comparable with past nights)")
        lines += [f"  {f.experiment}  {f.label}  {f.metric}: {f.reset}" for f in resets]
    for verdict, title in (
        (regress.UNDERPOWERED, "UNDERPOWERED (moved, but too few samples to tell)"),
        (regress.NO_BASELINE, "NO BASELINE"),
    ):
        items = [f for f in night.findings if f.verdict == verdict and not f.reset]
        if items:
            suffix = " - fails under --strict" if not night.strict else " - fails (--strict)"
            lines.append(f"\n{title}{suffix}")
            lines += [f"  {_not_judged_line(f)}" for f in items]
    if night.failures:
        lines.append("\nFAILURES")
        lines += [f"  {m}" for m in night.failures]
    if imps:
        lines.append("\nIMPROVEMENTS")
        lines += [f"  {_line(f)}" for f in imps]
    others = [c for c in night.change_points if not c.open]
    if others:
        lines.append("\nCHANGE POINTS (history; closed, accepted or improvements)")
        lines += [f"  {cp_line(c)}" for c in others]
    lines.append("\nUNCHANGED / NOT JUDGED")
    for exp, c in _counts(night).items():
        o = night.experiments[exp]
        lines.append(
            f"  {exp} (table v{o.version}): {c[regress.UNCHANGED]} unchanged, "
            f"{c[regress.UNDERPOWERED]} underpowered, {c[regress.NO_BASELINE]} without baseline"
        )
    undetectable = sum(1 for f in night.findings if not f.detectable)
    if undetectable:
        lines.append(
            f"\nnote: {undetectable} comparison(s) cannot reach significance with these sample "
            "sizes (more repetitions or baseline nights needed)"
        )
    if night.dashboard:
        lines.append(f"\ndashboard: {night.dashboard}")
    return "\n".join(lines) + "\n"


def markdown(night: Night) -> str:
    out = [
        f"# Nightly #{night.night} — {'FAILED' if night.exit_code else 'ok'}",
        "",
        f"run `{night.run_id}`, {night.started} → {night.ended}, suite `{night.suite}`, "
        f"commit `{(night.git.get('commit') or '-')[:12]}`"
        + (" (dirty)" if night.git.get("dirty") else ""),
        "",
    ]
    head = "| experiment | point | metric | change | baseline | tonight | p (adj) | nights |"
    sections = (
        (regress.REGRESSION, "Regressions"),
        (regress.IMPROVEMENT, "Improvements"),
        (regress.UNDERPOWERED, "Moved, but too few samples to tell (underpowered)"),
    )
    for verdict, title in sections:
        items = [f for f in night.findings if f.verdict == verdict]
        out += [f"## {title} ({len(items)})", ""]
        if items:
            out += [head, "|---|---|---|---|---|---|---|---|"]
            for f in items:
                p = min(f.p_worse_adj, f.p_better_adj)
                out.append(
                    f"| {f.experiment} | {f.label} | {f.metric} [{f.unit}] | {_pct(f.change)} | "
                    f"{_num(f.baseline_median)} | {_num(f.current_median)} | {_num(p)} | "
                    f"{f.baseline_nights} |"
                )
            out.append("")
    out += [f"## Change points ({len(night.change_points)})", ""]
    if night.change_points:
        out += [
            "| state | experiment | point | metric | night | commits | change | before | "
            "after | now vs before | p |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for c in night.change_points:
            state = "OPEN" if c.open else ("accepted" if c.accepted else c.direction)
            out.append(
                f"| {state} | {c.experiment} | {point_label(c.point)} | {c.metric} [{c.unit}] | "
                f"#{c.night} | `{c.commits}` | {_pct(c.change)} | {_num(c.mean_before)} | "
                f"{_num(c.mean_after)} | {_pct(c.current_vs_before)} | {_num(c.p_value)} |"
            )
        out.append("")
    resets = [f for f in night.findings if f.reset or f.excluded_nights]
    if resets:
        out += ["## Baseline notes", ""]
        out += [f"- {f.experiment} {f.label} {f.metric}: {'; '.join(f.notes)}" for f in resets]
        out.append("")
    if night.failures:
        out += ["## Failures", "", *[f"- {m}" for m in night.failures], ""]
    out += ["## Counts", "", "| experiment | table | " + " | ".join(regress.VERDICTS) + " |"]
    out.append("|---|---|" + "---|" * len(regress.VERDICTS))
    for exp, c in _counts(night).items():
        v = night.experiments[exp].version
        out.append(f"| {exp} | v{v} | " + " | ".join(str(c[k]) for k in regress.VERDICTS) + " |")
    out += [
        "",
        f"Judged by a one-sided Mann-Whitney U test per point and metric against the pooled "
        f"repetitions of past nights, p-values corrected over the night ({night.correction}), "
        "and a minimum relative change of the median (see `efflab.nightly.regression`); "
        "noiseless metrics compared exactly; change points over each metric's whole history "
        "by Apache Otava's E-divisive means with a t-test merge "
        "(see `efflab.nightly.changepoints`).",
        "",
    ]
    return "\n".join(out)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", s)


def trend_series(
    repo: Path,
    history: list[dict[str, Any]],
    experiment: str,
    metrics: set[str],
    night_records: Callable[[dict[str, Any]], Iterable[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Per metric: x ticks (night, version), per point the nightly medians, and flags.

    Points are keyed by their comparability group (as the baseline is), so a point keeps
    one line even when the suite renamed its parameters; the label is the latest one.
    `night_records(entry)` gives a night's records: by default from the index in one
    read, raising on a corrupt record; the site passes a reader that skips and names
    it (the one trend computation for the dashboard and the site).
    """
    if night_records is None:
        nights = load_nights(repo, experiment, history)  # one read of the index

        def night_records(entry: dict[str, Any]) -> Iterable[dict[str, Any]]:
            return nights[entry["night"]]

    ticks: list[tuple[int, Any]] = []
    labels: dict[str, str] = {}
    series: dict[str, dict[str, list[tuple[int, float]]]] = {m: {} for m in metrics}
    flags: dict[str, list[tuple[int, str, str]]] = {m: [] for m in metrics}
    for entry in history:
        exp = (entry.get("experiments") or {}).get(experiment)
        if not exp or not exp.get("keys"):
            continue
        x = len(ticks)
        ticks.append((entry["night"], exp.get("version")))
        vals: dict[tuple[str, str], list[float]] = {}
        for rec in night_records(entry):
            g = group_of(rec)
            labels[g] = point_label(rec["point"])
            for m, v in rec["metrics"].items():
                if m in metrics:
                    vals.setdefault((m, g), []).append(v["value"])
        for (m, g), vs in vals.items():
            series[m].setdefault(g, []).append((x, float(statistics.median(vs))))
        for fl in exp.get("flagged") or []:
            if fl.get("metric") in metrics and "group" in fl:
                flags[fl["metric"]].append((x, fl["group"], fl.get("verdict", "")))
    return {"ticks": ticks, "series": series, "flags": flags, "labels": labels}


def plot(data: dict[str, Any], metric: str, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ticks, series, flags = data["ticks"], data["series"][metric], data["flags"][metric]
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=80)
    try:
        for g, pts in sorted(series.items(), key=lambda kv: data["labels"][kv[0]]):
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1, label=data["labels"][g])
        for kind, marker, color in (
            (regress.REGRESSION, "X", "red"),
            (regress.IMPROVEMENT, "^", "green"),
        ):
            pts = [
                (x, y)
                for x, g, verdict in flags
                if verdict == kind
                for px, y in series.get(g, [])
                if px == x
            ]
            if pts:
                xs, ys = zip(*pts, strict=True)
                ax.scatter(xs, ys, s=90, marker=marker, color=color, zorder=5, label=kind)
        for night_no, _g, is_open in data.get("cps", {}).get(metric, []):
            xs = [i for i, (n, _v) in enumerate(ticks) if n == night_no]
            if xs:  # between the last night at the old level and the first at the new one
                ax.axvline(
                    xs[0] - 0.5,
                    color="red" if is_open else "grey",
                    linestyle="--",
                    linewidth=1,
                    label="change point (open)" if is_open else "change point",
                )
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels([f"#{n}\nv{v}" for n, v in ticks], fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("night / table version", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(alpha=0.3)
        if series:
            ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
        fig.tight_layout()
        fig.savefig(out)
    finally:
        plt.close(fig)


def _html(night: Night, md: str, images: dict[str, list[tuple[str, str]]]) -> str:
    e = html.escape
    rows = []
    for f in sorted(night.findings, key=lambda f: ORDER[f.verdict]):
        if f.verdict in (regress.REGRESSION, regress.IMPROVEMENT):
            cls = "reg" if f.verdict == regress.REGRESSION else "imp"
            rows.append(
                f"<tr class='{cls}'><td>{e(f.verdict)}</td><td>{e(f.experiment)}</td>"
                f"<td>{e(f.label)}</td><td>{e(f.metric)} [{e(f.unit)}]</td>"
                f"<td>{e(_pct(f.change))}</td><td>{e(_num(f.baseline_median))}</td>"
                f"<td>{e(_num(f.current_median))}</td></tr>"
            )
    parts = [
        f"<h1>Nightly #{night.night}: {'FAILED' if night.exit_code else 'ok'}</h1>",
        f"<p>run {e(night.run_id)} · suite {e(night.suite)} · "
        f"<a href='summary.md'>summary.md</a> · <a href='summary.json'>summary.json</a></p>",
    ]
    if night.failures:
        parts.append("<h2>Failures</h2><ul>")
        parts += [f"<li>{e(m)}</li>" for m in night.failures]
        parts.append("</ul>")
    parts.append("<h2>Changes</h2>")
    if rows:
        parts.append(
            "<table><tr><th>verdict</th><th>experiment</th><th>point</th><th>metric</th>"
            "<th>change</th><th>baseline</th><th>tonight</th></tr>" + "".join(rows) + "</table>"
        )
    else:
        parts.append("<p>No significant change.</p>")
    parts.append("<h2>Change points (whole history, Apache Otava E-divisive)</h2>")
    if night.change_points:
        parts.append(
            "<table><tr><th>state</th><th>experiment</th><th>point</th><th>metric</th>"
            "<th>night</th><th>commits</th><th>change</th><th>now vs before</th><th>p</th></tr>"
        )
        for c in night.change_points:
            state = "OPEN" if c.open else ("accepted" if c.accepted else c.direction)
            cls = "reg" if c.open else ("imp" if c.direction == regress.IMPROVEMENT else "")
            parts.append(
                f"<tr class='{cls}'><td>{e(state)}</td><td>{e(c.experiment)}</td>"
                f"<td>{e(point_label(c.point))}</td><td>{e(c.metric)} [{e(c.unit)}]</td>"
                f"<td>#{c.night}</td><td><code>{e(c.commits)}</code></td>"
                f"<td>{e(_pct(c.change))}</td><td>{e(_pct(c.current_vs_before))}</td>"
                f"<td>{e(_num(c.p_value))}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No persistent shift in any metric's history.</p>")
    for exp, imgs in images.items():
        parts.append(f"<h2>{e(exp)}</h2>")
        parts += [f"<h3>{e(m)}</h3><img src='{e(src)}' alt='{e(exp)} {e(m)}'>" for m, src in imgs]
    parts.append(f"<details><summary>summary.md</summary><pre>{e(md)}</pre></details>")
    css = "td,th{text-align:left}.reg{background:#fdd}.imp{background:#dfd}"
    return render.html_page(f"efflab nightly #{night.night}", "\n".join(parts), css)


def write(repo: Path, night: Night, trend_nights: int = 30) -> Path:
    """Build results/nightly/<n>/ aside and rename it into place."""
    root = nightly_dir(repo)
    final = root / str(night.night)
    history = [h for h in read_history(repo) if h["night"] <= night.night][-trend_nights:]
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{night.night}-"))
    try:
        images: dict[str, list[tuple[str, str]]] = {}
        for exp in night.experiments:
            found = [f for f in night.findings if f.experiment == exp]
            metrics = sorted({f.metric for f in found})
            if not metrics:
                continue
            data = trend_series(repo, history, exp, set(metrics))
            data["cps"] = {}
            for c in night.change_points:
                if c.experiment == exp:
                    data["cps"].setdefault(c.metric, []).append((c.night, c.group, c.open))
            for m in metrics:
                f0 = next(f for f in found if f.metric == m)
                name = f"{_slug(exp)}__{_slug(m)}.png"
                title = f"{exp} — {m} [{f0.unit}] ({f0.better} is better)"
                plot(data, m, title, tmp / name)
                images.setdefault(exp, []).append((m, name))
        md = markdown(night)
        (tmp / "summary.md").write_text(md)
        (tmp / "summary.json").write_text(
            json.dumps(night.to_json(), indent=2, sort_keys=True, default=str) + "\n"
        )
        (tmp / "index.html").write_text(_html(night, md, images))
        tmp.chmod(0o755)
        if final.exists():  # redrawing a night's dashboard replaces the old drawing
            shutil.rmtree(final)
        tmp.rename(final)
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
