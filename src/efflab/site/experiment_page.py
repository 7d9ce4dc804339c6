"""The experiment page: every metric of the latest table of every machine as an
interactive plot (median, min–max over repetitions), filters by parameter, provenance
per point, and the table versions with what changed between any two (the same
content as `efflab results diff`, one static page per pair).
"""

from __future__ import annotations

import json
import shlex
from itertools import combinations
from typing import Any

from efflab.results import tables
from efflab.site.experiments import Experiment, Source, clean, point_label
from efflab.site.html import Page, esc, fmt, slug, table

ALL_PAIRS_UP_TO = 15  # versions; beyond, diffs to the previous version and to the latest


def _rows(exp: Experiment) -> list[dict[str, Any]]:
    """One compact row per (machine, point): median, min, max, n, mean, ci95 per metric."""
    out = []
    for s in exp.sources:
        if s.table is None:
            continue
        params = [c for c in s.table.columns if c not in tables.STAT_COLUMNS]
        rows: dict[str, dict[str, Any]] = {}
        cols = [*params, "metric", "median", "min", "max", "n", "mean", "ci95_low", "ci95_high"]
        for t in s.table[cols].itertuples(index=False, name=None):
            point = {p: clean(v) for p, v in zip(params, t[: len(params)], strict=True)}
            # labelled as the records' points are (`n`, not the table's `param_n`), so a
            # plotted point finds its provenance
            label = point_label({tables.input_name(k): v for k, v in point.items()})
            row = rows.setdefault(label, {"h": s.host, "p": point, "l": label, "m": {}})
            row["m"][t[len(params)]] = [clean(v) for v in t[len(params) + 1 :]]
        out += rows.values()
    return out


def plot_axes(rows: list[dict[str, Any]], params: list[str]) -> dict[str, Any]:
    """What a person wants on the axes: the numeric input with the most values on x
    (log when its values are geometric: a steady ratio between neighbours), one colour
    per combination of the other inputs that vary. No numeric input: one category per
    point, as before."""
    values: dict[str, list[Any]] = {p: [] for p in params}
    for r in rows:
        for p in params:
            v = r["p"].get(p)
            if v not in values[p]:
                values[p].append(v)
    numeric = [
        p for p in params
        if len(values[p]) > 1
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values[p])
    ]  # fmt: skip
    if not numeric:
        return {"x": None, "xlog": False, "series": [p for p in params if len(values[p]) > 1]}
    x = max(numeric, key=lambda p: (len(values[p]), -params.index(p)))
    return {
        "x": x,
        "xname": tables.input_name(x),
        "xlog": geometric(sorted(values[x])),
        "series": [p for p in params if p != x and len(values[p]) > 1],
    }


def geometric(xs: list[float]) -> bool:
    """Three or more positive values with a steady ratio (> 1.5) between neighbours."""
    if len(xs) < 3 or xs[0] <= 0:
        return False
    ratios = [b / a for a, b in zip(xs, xs[1:], strict=False)]
    return min(ratios) > 1.5 and max(ratios) / min(ratios) < 1.35


def run_command(experiment: str, point: dict[str, Any]) -> str:
    """The command that measures one point again, copyable as it is."""
    parts = ["efflab", "run", shlex.quote(experiment)]
    for k, v in point.items():
        text = json.dumps(v) if isinstance(v, bool) or v is None else str(v)
        parts += ["--set", shlex.quote(f"{tables.input_name(k)}={text}")]
    return " ".join(parts)


def _provenance(s: Source) -> dict[str, dict[str, Any]]:
    return {
        label: {
            "n": p.records,
            "commits": [c[:10] for c in p.commits],
            "dirty": p.dirty,
            "dirty_files": p.dirty_files[:5],
            "hosts": p.hosts,
            "runtime": p.runtime,
            "images": p.images,
            "env": p.env,
            "energy": p.energy_methods,
            "contended": p.contended,
            "share": p.cpu_share_min,
            "runs": p.run_ids[-3:],
        }
        for label, p in s.provenance.items()
    }


def _params(t: object) -> list[str]:
    return [c for c in t.columns if c not in tables.STAT_COLUMNS]  # type: ignore[attr-defined]


def diff_pairs(vs: list[int]) -> list[tuple[int, int]]:
    if len(vs) <= ALL_PAIRS_UP_TO:
        return list(combinations(vs, 2))
    pairs = set(zip(vs, vs[1:], strict=False)) | {(v, vs[-1]) for v in vs[:-1]}
    return sorted(pairs)


def diff_page(exp: Experiment, s: Source, a: int, b: int) -> Page:
    base = f"experiments/{slug(exp.name)}/{slug(s.host)}"
    intro = (
        f"<p><a href='../../{slug(exp.name)}.html'>← {esc(exp.name)}</a> · machine "
        f"<b>{esc(s.host)}</b> · "
    )
    try:
        ta, tb = s.table_version(a), s.table_version(b)
        missing = [c for c in ("metric", "median") for t in (ta, tb) if c not in t.columns]
        if missing:
            raise ValueError(f"no column {missing[0]!r}")
    except (OSError, ValueError) as exc:  # an older version that is not a readable table
        body = intro + f"not comparable: a version cannot be read ({esc(str(exc)[:200])}).</p>"
        return Page(f"{base}/diff-v{a}-v{b}.html", f"{exp.name}: v{a} → v{b}", body, hosts=[s.host])
    pa, pb = (_params(t) for t in (ta, tb))
    if pa != pb:  # `tables.diff` matches rows on the parameter columns: none to match on
        body = intro + (
            f"not comparable: v{a} has parameters {esc(pa)}, v{b} has {esc(pb)} "
            "(another workload, e.g. a nightly override).</p>"
        )
        return Page(f"{base}/diff-v{a}-v{b}.html", f"{exp.name}: v{a} → v{b}", body, hosts=[s.host])
    d = tables.diff(ta, tb)
    d = d.rename(columns={"median_a": f"median v{a}", "median_b": f"median v{b}"})
    head = list(d.columns)
    rows = [[esc(fmt(clean(v))) for v in r] for r in d.itertuples(index=False, name=None)]
    changed = int((d["status"] != "both").sum() + (d["change_pct"].abs() > 0).sum())
    body = (
        intro + f"{len(d)} rows, {changed} changed. Same content as "
        f"<code>efflab results diff {esc(exp.name)} {a} {b}</code>.</p>" + table(head, rows)
    )
    return Page(f"{base}/diff-v{a}-v{b}.html", f"{exp.name}: v{a} → v{b}", body, hosts=[s.host])


def _versions_block(exp: Experiment, s: Source, pairs: list[tuple[int, int]]) -> str:
    base = f"{slug(exp.name)}/{slug(s.host)}"
    vs = [m["version"] for m in s.versions]
    rows = []
    for i, m in enumerate(s.versions):
        v = m["version"]
        prev = vs[i - 1] if i else None
        link = f"<a href='{base}/diff-v{prev}-v{v}.html'>v{prev} → v{v}</a>" if prev else "—"
        commit = (m.get("git_commit") or "—")[:10] + (" (dirty)" if m.get("git_dirty") else "")
        rows.append(
            [
                f"v{v}",
                esc(m.get("created")),
                esc(m.get("rows")),
                esc(m.get("records", "—")),
                f"<code>{esc(commit)}</code>",
                f"<code>{esc(str(m.get('content_hash', ''))[:12])}</code>",
                esc(m.get("run_id") or "—"),
                "quick" if m.get("quick") else "full",
                link,
            ]
        )
    head = ["version", "created", "rows", "records", "commit", "hash", "run", "size", "changes"]
    opts = "".join(f"<option value='{v}'>v{v}</option>" for v in vs)
    form = ""
    if len(vs) > 1:
        pj = esc(json.dumps([f"{a}-{b}" for a, b in pairs]))
        form = (
            f"<p class='diffpick' data-base='{esc(base)}' data-pairs='{pj}'>compare "
            f"<select class='va'>{opts}</select> with <select class='vb'>{opts}</select> "
            "<button type='button'>show diff</button> <span class='msg'></span></p>"
        )
    return table(head, rows) + form


def _prov_table(exp: Experiment, points: dict[str, dict[str, Any]]) -> str:
    head = ["machine", "point", "reps", "commit", "host", "runtime / image", "env"]
    head += ["energy method", "contended", "measure it again"]
    rows, attrs = [], []
    for s in exp.sources:
        for label, p in s.provenance.items():
            commit = ", ".join(c[:10] for c in p.commits) + (" (dirty)" if p.dirty else "")
            if p.dirty_files:  # what the commit does not hold
                commit += (
                    ": " + ", ".join(p.dirty_files[:5]) + (" …" if len(p.dirty_files) > 5 else "")
                )
            where = ", ".join(p.runtime) + (" · " + ", ".join(p.images) if p.images else "")
            share = "" if p.cpu_share_min is None else f" (min cpu share {p.cpu_share_min:.2f})"
            cont = f"{'yes' if p.contended else 'no'}: {p.contended}/{p.records}{share}"
            rows.append(
                [
                    esc(s.host),
                    esc(label),
                    str(p.records),
                    f"<code>{esc(commit)}</code>",
                    esc(", ".join(p.hosts)),
                    esc(where),
                    esc(", ".join(p.env) or "—"),
                    esc(", ".join(p.energy_methods)),
                    esc(cont),
                    f"<code class='cmd'>{esc(run_command(exp.name, points.get(label, {})))}</code>"
                    if label in points
                    else "—",
                ]
            )
            attrs.append(f"data-host='{esc(s.host)}' data-label='{esc(label)}' class='prow'")
    return table(head, rows, attrs)


def front_defaults(metrics: list[dict[str, str]]) -> tuple[str, str] | None:
    """The front plot's axes: throughput (a higher-is-better rate) against a second
    metric (a lower-is-better latency where there is one); None below two metrics."""
    usable = [m for m in metrics if m.get("unit") != "bool"]
    if len(usable) < 2:
        return None
    rate = [m for m in usable if m.get("better") == "higher" and "/s" in str(m.get("unit"))]
    x = (rate or usable)[0]["name"]
    lower = [m for m in usable if m["name"] != x and m.get("better") == "lower"]
    pref = [m for m in lower if "p90" in m["name"] or "p99" in m["name"]]
    y = (pref or lower or [m for m in usable if m["name"] != x])[0]["name"]
    return x, y


def _front_block(exp: Experiment) -> str:
    """Any metric against any other, every machine's points, the Pareto front drawn
    (each axis in its own better direction)."""
    axes = front_defaults(exp.metrics)
    if axes is None:
        return ""

    def pick(cls: str, chosen: str) -> str:
        opts = "".join(
            f"<option value='{esc(m['name'])}'{' selected' if m['name'] == chosen else ''}>"
            f"{esc(m['name'])} [{esc(m['unit'])}]</option>"
            for m in exp.metrics
        )
        return f"<select class='front-axis' data-axis='{cls}'>{opts}</select>"

    return (
        "<div class='front'><label>x " + pick("x", axes[0]) + "</label> <label>y "
        + pick("y", axes[1]) + "</label> (the line joins the points no other point beats "
        "on both)</div><div class='plot' data-kind='front'></div>"
    )  # fmt: skip


def experiment_pages(exp: Experiment) -> list[Page]:
    rows = _rows(exp)
    values: dict[str, list[Any]] = {p: [] for p in exp.params}
    for r in rows:
        for p in exp.params:
            v = r["p"].get(p)
            if v not in values[p]:
                values[p].append(v)
    filters = "".join(
        f"<label>{esc(tables.input_name(p))} <select class='param-filter' data-param='{esc(p)}'>"
        "<option value=''>all</option>"
        + "".join(
            f"<option value='{esc(json.dumps(v))}'>{esc(fmt(v))}</option>"
            for v in sorted(vals, key=str)
        )
        + "</select></label> "
        for p, vals in values.items()
        if len(vals) > 1
    )
    axes = plot_axes(rows, exp.params)
    plots = _front_block(
        exp
    ) + "".join(  # the title is the page's, above the plot: never under Plotly's toolbar
        f"<figure><figcaption>{esc(m['name'])} [{esc(m['unit'])}] "
        f"<small>({esc(m['better'])} is better)</small></figcaption>"
        f"<div class='plot' data-kind='points' data-metric='{esc(m['name'])}'></div></figure>"
        for m in exp.metrics
    )
    points = {r["l"]: r["p"] for r in rows}
    pages: list[Page] = []
    blocks = []
    for s in exp.sources:
        vs = [m["version"] for m in s.versions]
        pairs = diff_pairs(vs)
        pages += [diff_page(exp, s, a, b) for a, b in pairs]
        latest = f"latest table v{s.latest}" if s.latest else "no table yet"
        blocks.append(
            f"<section data-host='{esc(s.host)}'><h3>{esc(s.host)}"
            f"{' (imported)' if s.imported and '(imported)' not in s.host else ''}: "
            f"{latest}, {len(vs)} version(s), {s.records} records read</h3>"
            + (_versions_block(exp, s, pairs) if vs else "")
            + "</section>"
        )
    data = {
        "kind": "experiment",
        "experiment": exp.name,
        "params": exp.params,
        "hosts": [s.host for s in exp.sources],
        "metrics": exp.metrics,
        "rows": rows,
        "prov": {s.host: _provenance(s) for s in exp.sources},
        "axes": axes,
        "names": {p: tables.input_name(p) for p in exp.params},
        "commands": {label: run_command(exp.name, pt) for label, pt in points.items()},
    }
    n_points = len({r["l"] for r in rows})
    body = (
        f"<p>{len(exp.metrics)} metrics over {n_points} points from "
        f"{len(exp.sources)} machine(s). Each dot is the median over repetitions; "
        "the bar is its 95% interval (a bootstrap over the repetitions, as in the table). "
        + (
            f"x: {esc(axes['xname'])}{' (log scale: the grid is geometric)' if axes['xlog'] else ''}"
            + (
                f"; one colour per {esc(', '.join(tables.input_name(p) for p in axes['series']))}"
                if axes["series"]
                else ""
            )
            + ". "
            if axes["x"]
            else ""
        )
        + "Hover for values, click a dot for its provenance and the command that "
        "measures it again.</p>"
        f"<div class='filters'>{filters or '<i>one value per parameter: no filter</i>'}"
        "<span id='shown'></span></div><div id='prov-detail' class='detail'></div>"
        f"<div class='plots'>{plots}</div>"
        f"<h2 id='provenance'>Provenance per point</h2>{_prov_table(exp, points)}"
        f"<h2 id='versions'>Table versions</h2>{''.join(blocks)}"
    )
    hosts = [s.host for s in exp.sources]
    pages.insert(
        0,
        Page(f"experiments/{slug(exp.name)}.html", exp.name, body, data, plots=True, hosts=hosts),
    )
    return pages


def latest_summary(exp: Experiment) -> dict[str, Any]:
    """For the home page: the newest version per machine and its date."""
    out = []
    for s in exp.sources:
        m = s.versions[-1] if s.versions else {}
        out.append({"host": s.host, "version": m.get("version"), "created": m.get("created")})
    return {"name": exp.name, "sources": out, "metrics": len(exp.metrics)}
