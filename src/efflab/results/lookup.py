"""Run records by key, from the columnar index where it holds them, else from JSON.

The views that read a few thousand records by key — the nightly baseline, trend and
change points (`efflab.nightly.history`), the site's provenance and trends — call
`load` instead of opening one JSON file per record. What they get back is the
record's *view fields*, exactly as in the JSON file:

    key, run_id, repetition, point, alias, inputs, status ("ok"), metrics, provenance

(`view_fields` of a JSON record gives the same dict; tests compare the two.)

The JSON file stays the source of truth: a key is answered from the index only while
its file is there with the size it had when indexed (one stat per key, no read). A
record gone is left out; one that changed size since (truncated, overwritten by hand)
is read from its file. A same-size edit is not noticed: records are written once, and
`efflab results check` / `reindex` are the tools after editing one. Where the index
is not current — no index yet, an older schema, records added since (an import, a
run that crashed before indexing) — those keys are read from their JSON files with
the caller's reader (the nightly raises on a corrupt file, the site skips and names
it), and new ones are appended to the index on the way when its folder is writable.
The index holds successful records only; a failed record is never returned.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

VIEW_FIELDS = ("key", "run_id", "repetition", "point", "alias", "inputs", "status",
               "metrics", "provenance")  # fmt: skip
COLUMNS = ["key", "run_id", "repetition", "point", "alias", "inputs", "provenance",
           "metric", "unit", "better", "raw", "file_size"]  # fmt: skip


def view_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """The fields a view reads, as `load` returns them from the index."""
    return {k: rec[k] for k in VIEW_FIELDS if k in rec}


def read_json(file: Path) -> dict[str, Any] | None:
    """The default reader: the JSON record, or None when the file is missing."""
    from efflab.core.errors import BadInput
    from efflab.core.specio import read_capped

    try:
        return json.loads(read_capped(file, "a run record"))  # capped; a FIFO never blocks
    except BadInput as exc:
        if exc.found == "no such file":
            return None
        raise


def load(
    root: Path,
    keys: Iterable[str],
    reader: Callable[[Path], dict[str, Any] | None] = read_json,
    update: bool = True,
) -> list[dict[str, Any]]:
    """Successful records of `keys` under `root` (the folder holding runs/ and index/),
    in the order of `keys` (duplicates once)."""
    from efflab.results import index

    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return []
    indexed = from_index(index.parts_in(root / "index"), wanted)
    found: dict[str, dict[str, Any]] = {}
    fresh = []
    for k in wanted:
        size = _size(root / "runs" / f"{k}.json")
        if size is None:
            continue  # no record (the source of truth) whatever the index holds
        hit = indexed.get(k)
        if hit is not None and hit[1] == size:
            found[k] = hit[0]
        else:
            rec = reader(root / "runs" / f"{k}.json")
            if rec is not None:
                found[k] = rec
                if hit is None:
                    fresh.append(rec)
    if fresh and update:
        try:
            index.append_at(root / "index", fresh)
        except OSError:
            pass  # a read-only results checkout: the JSON answer stands
    return [
        view_fields(found[k]) for k in wanted if k in found and found[k].get("status", "ok") == "ok"
    ]


def _size(file: Path) -> int | None:
    try:
        return os.stat(file).st_size
    except FileNotFoundError:
        return None


def from_index(ps: list[Path], keys: list[str]) -> dict[str, tuple[dict[str, Any], int | None]]:
    """key -> (view fields, file size when indexed) of the indexed records among `keys`
    ({} for an index of an older schema)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from efflab.results import index

    if not ps or not index.current_schema(ps):
        return {}
    ps = index.may_hold(ps, keys)  # only the parts that may hold one of them
    if not ps:
        return {}
    wanted = pa.array(sorted(set(keys)), pa.string())
    table = pq.ParquetDataset(ps, filters=pc.field("key").isin(wanted)).read(columns=COLUMNS)
    out: dict[str, dict[str, Any]] = {}
    sizes: dict[str, int | None] = {}
    seen: set[tuple[str, str | None]] = set()  # two parts that raced: first copy wins
    decoded: dict[str, Any] = {}

    def dec(text: str | None) -> Any:
        if text is None:
            return None
        if text not in decoded:
            decoded[text] = json.loads(text)
        return decoded[text]

    for row in table.to_pylist():
        k, metric = row["key"], row["metric"]
        if (k, metric) in seen:
            continue
        seen.add((k, metric))
        rec = out.get(k)
        if rec is None:
            rec = out[k] = {
                "key": k,
                "run_id": row["run_id"],
                "repetition": row["repetition"],
                "point": _copy(dec(row["point"])),
                "alias": row["alias"],
                "inputs": _copy(dec(row["inputs"])),
                "status": "ok",
                "metrics": {},
                "provenance": _copy(dec(row["provenance"])),
            }
            sizes[k] = row["file_size"]
            for f in ("alias", "inputs", "provenance"):
                if rec[f] is None:
                    del rec[f]
        if metric is not None:
            rec["metrics"][metric] = {
                "value": json.loads(row["raw"]),
                "unit": row["unit"],
                "better": row["better"],
            }
    # rows keep the record's metric order (efflab.results.index.to_table)
    return {k: (rec, sizes[k]) for k, rec in out.items()}


def _copy(v: Any) -> Any:
    """A record's own copy of a decoded value shared between rows (callers may edit)."""
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v
