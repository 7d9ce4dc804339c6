"""Columnar index of run records: Parquet parts that aggregation reads instead of JSON.

The JSON records (`results/<exp>/runs/<key>.json`) stay the source of truth: they are
what a person reads and what a results repository versions. But aggregating a store
from them reads one file per record (a million files: minutes). So every successful
record is also one row per metric in `results/<exp>/index/part-NNNNN.parquet`:

    key, run_id, repetition, point (canonical JSON), metric, unit, better, value,
    alias, inputs, provenance (canonical JSON), raw (the value's own JSON text),
    file_size (bytes of the record's JSON file when indexed; null: no file)

The last four let a view rebuild the record's fields it reads (`efflab.results.lookup`:
the nightly baseline and the site) without the JSON file; a record without metrics is
one row with a null metric. Parts written before those columns existed make the index
stale: `append` then rebuilds it, and readers fall back to the JSON records.

- Append-only: a run adds one new part with the records not yet indexed; parts are
  never rewritten (a part's name is claimed with a hard link: no overwrite race).
- Beside each part, `part-NNNNN.keys`: the sorted 64-bit hashes of its keys. "Which
  of these keys are indexed?" (every append, every lookup) reads those small files
  instead of a million-row key column, and reads the key column only of parts that
  may hold one (a hash collision costs that exact read, never a wrong answer). A part
  without one (written before, or in the instant before its writer renames it) is
  always read.
- `rebuild` (`efflab results reindex`) writes the index anew from the JSON records,
  sorted by key, with fixed writer options: the same records give the same bytes.
- Aggregating from it gives exactly `tables.aggregate` of the records: both go through
  `tables.aggregate_frame`, and parameters are decoded once per distinct point.
Failed records are not indexed (tables use successful ones only).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from efflab.core import layout
from efflab.core.specio import canonical_json
from efflab.results import tables
from efflab.results.runrecord import RunRecord

SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("run_id", pa.string()),
        ("repetition", pa.int64()),
        ("point", pa.string()),
        ("metric", pa.string()),
        ("unit", pa.string()),
        ("better", pa.string()),
        ("value", pa.float64()),
        ("alias", pa.string()),
        ("inputs", pa.string()),
        ("provenance", pa.string()),
        ("raw", pa.string()),
        ("file_size", pa.int64()),
    ]
)
PART_PREFIX = "part-"
KEYS_SUFFIX = ".keys"  # part-NNNNN.keys: sorted uint64 hashes of the part's keys
# fixed writer options: part bytes depend only on the rows
WRITE_OPTIONS = {"compression": "zstd", "use_dictionary": True, "write_statistics": True}


@dataclass(frozen=True)
class IndexUpdate:
    experiment: str
    added: int  # records added by this call
    part: Path | None  # the part written, if any


def index_dir(repo: Path, experiment: str) -> Path:
    return layout.experiment_dir(repo, experiment) / "index"


def parts(repo: Path, experiment: str) -> list[Path]:
    return parts_in(index_dir(repo, experiment))


def parts_in(d: Path) -> list[Path]:
    """The parts of the index folder `d` (`<root>/index`, beside `<root>/runs`)."""
    if not d.is_dir():
        return []
    return sorted(
        p for p in d.iterdir() if p.name.startswith(PART_PREFIX) and p.suffix == ".parquet"
    )


def current_schema(ps: list[Path]) -> bool:
    """Every part has today's columns (an index from an older efflab has not)."""
    want = set(SCHEMA.names)
    try:
        return all(want <= set(pq.read_schema(p).names) for p in ps)
    except (OSError, pa.ArrowException):
        return False


def _sizes(runs: Path, keys: Iterable[str]) -> dict[str, int]:
    out = {}
    for k in keys:
        try:
            out[k] = os.stat(runs / f"{k}.json").st_size
        except OSError:
            pass
    return out


def to_table(records: Iterable[dict[str, Any]], sizes: dict[str, int] | None = None) -> pa.Table:
    """Rows of successful records, sorted by key; a record's metrics in its own order."""
    cols: dict[str, list[Any]] = {f.name: [] for f in SCHEMA}
    for rec in sorted(records, key=lambda r: r["key"]):
        if rec.get("status", "ok") != "ok":
            continue
        point = canonical_json(rec["point"])
        inputs = canonical_json(rec["inputs"]) if "inputs" in rec else None
        prov = canonical_json(rec["provenance"]) if "provenance" in rec else None
        metrics = rec["metrics"]
        for name in list(metrics) or [None]:  # the record's order; none: one null row
            m = metrics[name] if name is not None else {}
            cols["key"].append(rec["key"])
            cols["run_id"].append(rec.get("run_id", ""))
            cols["repetition"].append(rec.get("repetition", 0))
            cols["point"].append(point)
            cols["metric"].append(name)
            cols["unit"].append(m.get("unit"))
            cols["better"].append(m.get("better"))
            v = m.get("value")
            cols["value"].append(None if v is None or isinstance(v, str) else float(v))
            cols["alias"].append(rec.get("alias"))
            cols["inputs"].append(inputs)
            cols["provenance"].append(prov)
            cols["raw"].append(json.dumps(v) if name is not None else None)
            cols["file_size"].append((sizes or {}).get(rec["key"]))
    return pa.table(cols, schema=SCHEMA)


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, **WRITE_OPTIONS)


def key_hashes(keys: Iterable[str]) -> np.ndarray:
    """Sorted distinct 64-bit hashes of `keys` (little-endian uint64: same bytes anywhere)."""
    hs = {
        int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little") for k in keys
    }
    return np.array(sorted(hs), dtype="<u8")


def keys_file(part: Path) -> Path:
    return part.with_name(part.name.removesuffix(".parquet") + KEYS_SUFFIX)


def _write_keys(table: pa.Table, path: Path) -> None:
    key_hashes(pc.unique(table.column("key")).to_pylist()).tofile(path)


def may_hold(ps: list[Path], keys: Iterable[str]) -> list[Path]:
    """The parts that may hold one of `keys`: those whose keys file has the hash of one,
    and every part without a readable keys file."""
    wanted = key_hashes(keys)
    if len(wanted) == 0:
        return []
    out = []
    for p in ps:
        try:
            have = np.fromfile(keys_file(p), dtype="<u8")
        except (OSError, ValueError):
            out.append(p)
            continue
        if np.isin(wanted, have, assume_unique=True).any():
            out.append(p)
    return out


def indexed_keys(repo: Path, experiment: str) -> set[str]:
    ps = parts(repo, experiment)
    if not current_schema(ps):
        return set()
    if not ps:
        return set()
    keys = pq.ParquetDataset(ps).read(columns=["key"]).column("key")
    return set(pc.unique(keys).to_pylist())


def already_indexed(repo: Path, experiment: str, keys: Iterable[str]) -> set[str]:
    """Which of `keys` the index holds: a vectorised lookup over the key column, so a
    night's few thousand keys cost no Python set of the whole store."""
    return _already_indexed(parts(repo, experiment), keys)


def _already_indexed(ps: list[Path], keys: Iterable[str]) -> set[str]:
    keys = sorted(set(keys))
    ps = may_hold(ps, keys)  # a night of new keys: no key column read at all
    wanted = pa.array(keys, pa.string())
    if not ps or len(wanted) == 0:
        return set()
    column = pq.ParquetDataset(ps).read(columns=["key"]).column("key")
    hits = pc.filter(column, pc.is_in(column, value_set=wanted))
    return set(pc.unique(hits).to_pylist())


def append(
    repo: Path, experiment: str, records: Iterable[RunRecord | dict[str, Any]]
) -> IndexUpdate:
    """Index the successful records not indexed yet, as one new part. An index of an
    older schema is rebuilt from the JSON records instead (they include `records`)."""
    return append_at(index_dir(repo, experiment), records, experiment, repo)


def append_at(
    d: Path,
    records: Iterable[RunRecord | dict[str, Any]],
    experiment: str = "",
    repo: Path | None = None,
) -> IndexUpdate:
    """`append` into the index folder `d` (also an imported host's `<root>/index`):
    RunRecords, or JSON records as read from files (the index is a JSON edge)."""
    as_json = (r.to_json() if isinstance(r, RunRecord) else r for r in records)
    ok = {r["key"]: r for r in as_json if r.get("status", "ok") == "ok"}
    ps = parts_in(d)
    if ps and not current_schema(ps):
        if repo is not None and d == index_dir(repo, experiment):
            return rebuild(repo, experiment)
        return rebuild_at(d.parent, experiment)
    have = _already_indexed(ps, ok)
    new = {k: r for k, r in ok.items() if k not in have}
    if not new:
        return IndexUpdate(experiment, 0, None)
    d.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".parquet")
    os.close(fd)
    tmp_keys = Path(tmp).with_suffix(KEYS_SUFFIX)
    try:
        table = to_table(new.values(), _sizes(d.parent / "runs", new))
        _write(table, Path(tmp))
        _write_keys(table, tmp_keys)
        n = len(parts_in(d))
        while True:  # claim the next free part name; never overwrite another writer's
            part = d / f"{PART_PREFIX}{n:05d}.parquet"
            try:
                os.link(tmp, part)
            except FileExistsError:
                n += 1
                continue
            os.replace(tmp_keys, keys_file(part))
            return IndexUpdate(experiment, len(new), part)
    finally:
        os.unlink(tmp)
        tmp_keys.unlink(missing_ok=True)


def load_json_records(repo: Path, experiment: str) -> list[dict[str, Any]]:
    return _json_records(layout.runs_dir(repo, experiment))


def _json_records(d: Path) -> list[dict[str, Any]]:
    if not d.is_dir():
        return []
    return [
        json.loads(f.read_bytes())
        for f in sorted(d.glob("*.json"))
        if not f.name.endswith(".failed.json")
    ]


def rebuild(repo: Path, experiment: str) -> IndexUpdate:
    """The index anew from the JSON records (one part; same records -> same bytes)."""
    return rebuild_at(layout.experiment_dir(repo, experiment), experiment)


def rebuild_at(root: Path, experiment: str = "") -> IndexUpdate:
    """`rebuild` of `<root>/index` from `<root>/runs/*.json`."""
    recs = _json_records(root / "runs")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".index-"))
    old = root / f".index-old-{os.getpid()}"
    try:
        part = tmp / f"{PART_PREFIX}00000.parquet"
        table = to_table(recs, _sizes(root / "runs", (r["key"] for r in recs)))
        _write(table, part)
        _write_keys(table, keys_file(part))
        d = root / "index"
        if d.exists():
            os.rename(d, old)
        os.rename(tmp, d)
        return IndexUpdate(experiment, len(recs), d / part.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def read(
    repo: Path, experiment: str, metrics: list[str] | None = None, keys: set[str] | None = None
) -> pa.Table:
    ps = parts(repo, experiment)
    if not ps:
        return SCHEMA.empty_table()
    filters: list[tuple[str, str, Any]] = [("metric", "!=", "")]  # not the no-metric rows
    if metrics is not None:
        filters.append(("metric", "in", list(metrics)))
    if keys is not None:
        filters.append(("key", "in", list(keys)))
    table = pq.ParquetDataset(ps, filters=filters or None).read(
        columns=["key", "point", "metric", "unit", "better", "value"]
    )
    # one row per (key, metric) even if two parts raced to index the same record
    if len(ps) > 1:
        table = _dedupe(table)
    return table


def _dedupe(table: pa.Table) -> pa.Table:
    df = table.select(["key", "metric"]).to_pandas()
    keep = ~df.duplicated(keep="first").to_numpy()
    return table.filter(pa.array(keep)) if not keep.all() else table


def aggregate(
    repo: Path,
    experiment: str,
    params: list[str],
    metrics: list[str] | None = None,
    keys: set[str] | None = None,
) -> pd.DataFrame:
    """`tables.aggregate` of the indexed records, without reading their JSON files."""
    table = read(repo, experiment, metrics, keys)
    cols_out = [f"param_{p}" if p in tables.STAT_COLUMNS else p for p in params]
    if table.num_rows == 0:
        return pd.DataFrame(columns=[*cols_out, *tables.STAT_COLUMNS])
    point = pc.dictionary_encode(table.column("point")).combine_chunks()
    codes = point.indices.to_numpy(zero_copy_only=False)
    points = [json.loads(p) for p in point.dictionary.to_pylist()]
    df = pd.DataFrame(
        {
            c: table.column(c).to_numpy(zero_copy_only=False)
            for c in ("metric", "unit", "better", "value")
        }
    )
    for p, out, g in zip(params, cols_out, tables.group_keys(cols_out), strict=True):
        values = [pt.get(p) for pt in points]
        # dtype inferred from the distinct values, as DataFrame.from_records infers it
        df[out] = pd.Series(values).take(codes).reset_index(drop=True)
        gk = np.array([tables.param_key(v) for v in values], dtype=object)
        df[g] = gk[codes]
    return tables.aggregate_frame(
        df[[*cols_out, *tables.group_keys(cols_out), "metric", "unit", "better", "value"]], cols_out
    )
