"""Versioned result tables: run records -> one tidy long table per experiment.

One row per (point, metric): the point's parameters, metric, unit, better, n, mean,
median, std, min, max, ci95_low, ci95_high (the 95% bootstrap interval of the median
over the point's repetitions: efflab.results.intervals, stated in the manifest). Saved under results/<exp>/tables/v<N>/
(Parquet + CSV + Markdown + manifest.json). Identical content makes no new version,
and a version, once written (atomically, by renaming a finished folder), is never
rewritten.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efflab.core.errors import BadInput
from efflab.core.specio import file_mode, read_capped, write_failed
from efflab.results import render
from efflab.results.runrecord import RunRecord

if TYPE_CHECKING:  # pandas, numpy, pyarrow: imported by the functions that compute
    import numpy as np
    import pandas as pd  # (versions and manifests, read before a run, need none of them)

STAT_COLUMNS = [
    "metric",
    "unit",
    "better",
    "n",
    "mean",
    "median",
    "std",
    "min",
    "max",
    "ci95_low",
    "ci95_high",
]


def tables_dir(repo: Path, experiment: str) -> Path:
    return repo / "results" / experiment / "tables"


def aggregate(
    records: Iterable[RunRecord | dict[str, Any]],
    params: list[str],
    metrics: list[str] | None = None,
) -> pd.DataFrame:
    """Long table from successful records (RunRecords, or JSON records an importer
    built); `params` fixes the parameter column order."""
    import pandas as pd

    rows = []
    # a parameter named like a statistics column ("n", "mean") gets a "param_" prefix
    cols_out = [f"param_{p}" if p in STAT_COLUMNS else p for p in params]
    for rec in records:
        if isinstance(rec, RunRecord):
            point = rec.point
            values = [(n, m.unit, m.better, m.value) for n, m in rec.metrics.items()]
        else:  # a JSON record (point and metrics are all a table needs)
            point = rec["point"]
            values = [(n, m["unit"], m["better"], m["value"]) for n, m in rec["metrics"].items()]
        base = tuple(point.get(p) for p in params)
        for name, unit, better, value in values:
            if metrics is None or name in metrics:
                rows.append((*base, name, unit, better, value))
    params = cols_out
    cols = [*params, "metric", "unit", "better", "value"]
    if not rows:
        return pd.DataFrame(columns=[*params, *STAT_COLUMNS])
    df = pd.DataFrame.from_records(rows, columns=cols)
    # group on a string form of the parameters: mixed types and missing values group
    # predictably, and the original values come back from the first row of each group
    gkeys = group_keys(params)
    for p, g in zip(params, gkeys, strict=True):
        df[g] = df[p].map(param_key)
    return aggregate_frame(df, params)


def group_keys(params: list[str]) -> list[str]:
    return [f"__k{i}" for i in range(len(params))]


def param_key(value: Any) -> str:
    """The string a parameter value groups and sorts by."""
    return json.dumps(value, sort_keys=True, default=str)


def aggregate_frame(df: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """The long table from one row per (record, metric): columns `params` (output
    names), their `group_keys` (`param_key` strings), metric, unit, better, value.
    Shared by record lists and the columnar index (efflab.results.index)."""
    import pandas as pd

    if df.empty:
        return pd.DataFrame(columns=[*params, *STAT_COLUMNS])
    gkeys = group_keys(params)
    grouped = df.groupby([*gkeys, "metric", "unit", "better"], sort=False, dropna=False)
    agg = grouped["value"].agg(["count", "mean", "median", "std", "min", "max"]).reset_index()
    firsts = grouped[params].first().reset_index(drop=True) if params else None
    out = pd.DataFrame({p: firsts[p] for p in params}) if params else pd.DataFrame(index=agg.index)
    for c in ("metric", "unit", "better"):
        out[c] = agg[c].values
    n = agg["count"].to_numpy()
    out["n"] = n.astype(int)
    for c in ("mean", "median", "std", "min", "max"):
        out[c] = agg[c].to_numpy(dtype=float)
    out["ci95_low"], out["ci95_high"] = _median_intervals(df, grouped, n)
    sort_cols = [*gkeys, "metric"]
    out[gkeys] = agg[gkeys].values
    out = out.sort_values(sort_cols, kind="stable").drop(columns=gkeys).reset_index(drop=True)
    return out[[*params, *STAT_COLUMNS]]


def _median_intervals(df: pd.DataFrame, grouped, counts) -> tuple[np.ndarray, np.ndarray]:
    """ci95_low/high of each group's median (efflab.results.intervals), groups in the
    order of `grouped`'s aggregation; one sort over all values, no Python per group."""
    import numpy as np

    from efflab.results import intervals

    gid = grouped.ngroup().to_numpy()
    vals = df["value"].to_numpy(dtype=float)
    keep = ~np.isnan(vals)
    gid, vals = gid[keep], vals[keep]
    order = np.lexsort((vals, gid))
    vals = vals[order]
    counts = np.asarray(counts, dtype=int)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    low, high = np.full(len(counts), np.nan), np.full(len(counts), np.nan)
    for n in np.unique(counts):
        if n < 2:
            continue
        rows = np.flatnonzero(counts == n)
        lo, hi = intervals.median_interval(vals[starts[rows][:, None] + np.arange(n)])
        low[rows], high[rows] = lo, hi
    return low, high


def input_name(column: str) -> str:
    """A long table's parameter column under the input's own name (`param_n` -> `n`)."""
    bare = column.removeprefix("param_")
    return bare if column.startswith("param_") and bare in STAT_COLUMNS else column


def wide(df: pd.DataFrame, with_interval: bool = False) -> pd.DataFrame:
    """One row per point, the inputs under their own names, one column per metric
    (its median; `with_interval`: "median [ci95_low, ci95_high]" text, for reading)."""
    import pandas as pd

    params = [c for c in df.columns if c not in STAT_COLUMNS]
    names = [input_name(c) for c in params]
    metrics = list(dict.fromkeys(df["metric"]))
    units = {m: str(u) for m, u in zip(df["metric"], df["unit"], strict=True)}
    rows: dict[tuple, dict[str, Any]] = {}
    for r in df.itertuples(index=False):
        d = r._asdict()
        key = tuple(param_key(d[p]) for p in params)
        row = rows.setdefault(key, {n: d[p] for n, p in zip(names, params, strict=True)})
        col = r.metric if r.metric not in names else f"{r.metric} (metric)"
        if with_interval:
            row[col] = _with_interval(d["median"], d["ci95_low"], d["ci95_high"])
        else:
            row[col] = d["median"]
    cols = [*names, *((m if m not in names else f"{m} (metric)") for m in metrics)]
    out = pd.DataFrame(list(rows.values()), columns=cols)
    if with_interval:  # the unit in the header, where a reader looks for it
        out = out.rename(columns={m: f"{m} [{units[m]}]" for m in metrics if units.get(m)})
    return out


def _with_interval(median: float, low: float, high: float) -> str:
    def f(v: float) -> str:
        return f"{v:.4g}"

    if low is None or (isinstance(low, float) and math.isnan(low)):
        return f(median)
    return f"{f(median)} [{f(low)}, {f(high)}]"


def to_csv(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.10g", lineterminator="\n")


def to_markdown(df: pd.DataFrame) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return ""
            # counts (LUTs, tokens) print whole; other values with 4 significant digits
            return f"{v:.0f}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
        return "" if v is None else str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def content_hash(df: pd.DataFrame) -> str:
    return hashlib.sha256(to_csv(df).encode()).hexdigest()


def versions(repo: Path, experiment: str) -> list[int]:
    return render.numbers(tables_dir(repo, experiment), prefix="v")


REPAIR_HINT = "run `efflab results check {exp} --repair` to set bad files aside"


def manifest(repo: Path, experiment: str, version: int) -> dict[str, Any]:
    return _manifest_at(tables_dir(repo, experiment) / f"v{version}" / "manifest.json", experiment)


def _manifest_at(f: Path, experiment: str) -> dict[str, Any]:
    hint = REPAIR_HINT.format(exp=experiment)
    try:
        data = json.loads(read_capped(f, "a table manifest"))  # capped; a FIFO never blocks
    except BadInput as exc:
        exc.hint = exc.hint or hint
        raise
    except (OSError, ValueError, RecursionError) as exc:
        raise BadInput(f, "$", "a complete JSON manifest", f"corrupt ({exc})", hint) from None
    for name in ("content_hash", "version", "created", "rows"):
        if not isinstance(data, dict) or name not in data:
            raise BadInput(f, f"$.{name}", "a manifest field", "it missing", hint)
    return data


def latest_manifest(repo: Path, experiment: str) -> dict[str, Any] | None:
    """The latest version's manifest (BadInput when corrupt): checked before a run, so
    a bad one is reported before hours of jobs rather than after."""
    vs = versions(repo, experiment)
    return manifest(repo, experiment, vs[-1]) if vs else None


def read_table(file: Path, experiment: str) -> pd.DataFrame:
    """A version's table.parquet, or BadInput naming it (truncated, missing)."""
    import pandas as pd
    import pyarrow as pa

    try:
        return pd.read_parquet(file)
    except (OSError, ValueError, pa.ArrowException) as exc:
        found = "no such file" if not file.exists() else f"unreadable Parquet ({exc})"
        raise BadInput(file, "$", "a complete Parquet table", found,
                       REPAIR_HINT.format(exp=experiment)) from None  # fmt: skip


def save(
    repo: Path,
    experiment: str,
    df: pd.DataFrame,
    git_commit: str | None,
    extra: dict[str, Any] | None = None,
    root: Path | None = None,
) -> tuple[int, bool]:
    """Save df as the next version unless it equals the latest. Returns (version, new).
    `root`: another tables folder than the experiment's own (an imported source's
    `results/<exp>/hosts/<host>/tables`)."""
    h = content_hash(df)
    root = root or tables_dir(repo, experiment)
    existing = render.numbers(root, prefix="v")
    if (
        existing
        and _manifest_at(root / f"v{existing[-1]}" / "manifest.json", experiment)["content_hash"]
        == h
    ):
        return existing[-1], False
    data = {"table.csv": to_csv(df), "table.md": to_markdown(df)}

    from efflab.results import intervals

    def fill(tmp: Path, n: int) -> None:
        if not (tmp / "table.parquet").exists():
            os.chmod(tmp, file_mode(0o777))  # mkdtemp makes 0700; versions read like the rest
            df.to_parquet(tmp / "table.parquet", index=False)
            for name, text in data.items():
                (tmp / name).write_text(text)
        meta = {
            "experiment": experiment,
            "version": n,
            "content_hash": h,
            "parent": n - 1 if n > 1 else None,
            "git_commit": git_commit,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "rows": len(df),
            "columns": list(df.columns),
            "interval": {"columns": ["ci95_low", "ci95_high"], **intervals.describe()},
            **(extra or {}),
        }
        (tmp / "manifest.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")

    try:
        return render.write_numbered(root, fill, prefix="v"), True
    except OSError as exc:  # full or read-only disk: nothing half-written, one line
        raise write_failed(root / "v?", exc) from None


def load(repo: Path, experiment: str, version: int | None = None) -> tuple[pd.DataFrame, int]:
    vs = versions(repo, experiment)
    if not vs:
        raise BadInput(
            tables_dir(repo, experiment),
            "$",
            f"a table version of '{experiment}' (run `efflab run {experiment}` first)",
            "no versions",
        )
    v = vs[-1] if version is None else version
    if v not in vs:
        raise BadInput(tables_dir(repo, experiment), "$.version", f"one of {vs}", v)
    return read_table(tables_dir(repo, experiment) / f"v{v}" / "table.parquet", experiment), v


NOT_A_PARAMETER = "(not a parameter)"


def diff(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Median per (point, metric) in A and B with the relative change.

    The versions may have different parameter columns (a parameter added to or dropped
    from the grid): a column one version lacks reads NOT_A_PARAMETER there, so its rows
    match only rows where the other version lacks it too (else "only in A/B").
    """
    params = [c for c in a.columns if c not in STAT_COLUMNS]
    params += [c for c in b.columns if c not in STAT_COLUMNS and c not in params]
    keys = params + ["metric", "unit", "better"]

    def side(t: pd.DataFrame) -> pd.DataFrame:
        t = t.assign(**{c: NOT_A_PARAMETER for c in params if c not in t.columns})
        return t[keys + ["median"]].astype({k: str for k in keys})

    ka, kb = side(a), side(b)
    m = ka.merge(kb, on=keys, how="outer", suffixes=("_a", "_b"), indicator=True)
    m["change_pct"] = (m["median_b"] - m["median_a"]) / m["median_a"].abs() * 100.0
    m["status"] = (
        m["_merge"]
        .map({"both": "both", "left_only": "only in A", "right_only": "only in B"})
        .astype(str)
    )
    return m.drop(columns="_merge")
