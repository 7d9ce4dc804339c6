"""Records by key from the columnar index: the same view fields as the JSON records,
falling back to (and indexing) the JSON where the index is missing, stale or behind."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from efflab.core import layout
from efflab.nightly import history
from efflab.results import index, lookup
from efflab.site.experiments import Skipped, read_records

EXP = "synth"


def records(n: int, seed: int = 0, start: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    out = []
    for i in range(start, start + n):
        rec = {
            "schema_version": 1,
            "key": f"{i:020x}",
            "run_id": f"r{i % 2}",
            "experiment": EXP,
            "alias": f"demo-{i % 2}",
            "status": "ok",
            "point": {"model": f"m{i % 3}", "size": [1, 2.5, None][i % 3]},
            "inputs": {"model": f"m{i % 3}", "seed": i % 4, "tags": ["a", {"b": i % 2}]},
            "repetition": i // 6,
            # the script's own order, an int, a float, and a big int (exact, not 2**53-ish)
            "metrics": {
                "z_lat": {"value": rnd.gauss(100, 5), "unit": "us", "better": "lower"},
                "count": {"value": 3 + i % 2, "unit": "items", "better": "higher"},
                "big": {"value": 2**60 + i, "unit": "", "better": "lower"},
            },
            "values": {"not": "a view field"},
            "provenance": {
                "git": {"commit": f"c{i % 3}", "dirty": bool(i % 2)},
                "host": {"hostname": "h1", "cpus": 2},
                "runtime": "host",
                "cpu_share": round(rnd.random(), 3),
                "energy_method": "estimated:none",
            },
        }
        if i % 11 == 0:
            rec["metrics"] = {}  # a record with no metrics still comes back
        out.append(rec)
    return out


def write(root: Path, recs: list[dict]) -> None:
    d = root / "runs"
    d.mkdir(parents=True, exist_ok=True)
    for r in recs:
        name = f"{r['key']}.failed.json" if r["status"] != "ok" else f"{r['key']}.json"
        (d / name).write_text(json.dumps(r))


def expected(recs: list[dict], keys: list[str]) -> list[dict]:
    by = {r["key"]: r for r in recs if r["status"] == "ok"}
    return [lookup.view_fields(by[k]) for k in dict.fromkeys(keys) if k in by]


def test_index_gives_the_json_records_view_fields(tmp_path: Path) -> None:
    recs = records(60)
    failed = {**records(1, start=100)[0], "status": "failed"}
    write(tmp_path / "results" / EXP, [*recs, failed])
    index.rebuild(tmp_path, EXP)
    root = layout.experiment_dir(tmp_path, EXP)
    keys = [r["key"] for r in recs[::-3]] + [failed["key"], "0" * 20, recs[0]["key"]]
    got = lookup.load(root, keys, update=False)
    assert got == expected(recs, keys)
    assert [list(r["metrics"]) for r in got] == [
        list(r["metrics"]) for r in expected(recs, keys)
    ]  # the record's metric order, not sorted
    assert any(not r["metrics"] for r in got) and all("values" not in r for r in got)

    # answered from the index, not the files: a same-size edit of every file goes unseen
    for f in (root / "runs").glob("*.json"):
        f.write_bytes(f.read_bytes().replace(b'"unit": "us"', b'"unit": "ms"'))
    assert lookup.load(root, keys, update=False) == got
    # ...but the files decide: one gone is left out, one of another size is read anew
    gone, changed = recs[59], recs[56]  # both among `keys`
    (root / "runs" / f"{gone['key']}.json").unlink()
    edited = {**changed, "point": {"model": "other"}}
    (root / "runs" / f"{changed['key']}.json").write_text(json.dumps(edited))
    again = {r["key"]: r for r in lookup.load(root, keys, update=False)}
    assert gone["key"] not in again and again[changed["key"]]["point"] == {"model": "other"}


def test_missing_and_stale_index_fall_back_to_json_and_catch_up(tmp_path: Path) -> None:
    recs = records(40)
    root = layout.experiment_dir(tmp_path, EXP)
    write(root, recs[:30])
    keys = [r["key"] for r in recs]
    assert lookup.load(root, keys) == expected(recs[:30], keys)  # no index: the JSON
    assert len(index.parts(tmp_path, EXP)) == 1  # ...indexed on the way
    write(root, recs[30:])  # records added since (an import): the index is behind
    assert lookup.load(root, keys) == expected(recs, keys)
    assert len(index.parts(tmp_path, EXP)) == 2
    found = lookup.from_index(index.parts(tmp_path, EXP), keys)  # now all in the index
    assert {k: v[0] for k, v in found.items()} == {r["key"]: r for r in expected(recs, keys)}

    # an index written before the view columns existed: stale, so JSON, then a rebuild
    old = root / "index"
    shutil.rmtree(old)
    write(root, recs)
    old.mkdir()
    cols = ["key", "run_id", "repetition", "point", "metric", "unit", "better", "value"]
    table = index.to_table(recs).select(cols)
    pq.write_table(table, old / "part-00000.parquet")
    assert not index.current_schema(index.parts(tmp_path, EXP))
    assert lookup.from_index(index.parts(tmp_path, EXP), keys) == {}
    assert lookup.load(root, keys, update=False) == expected(recs, keys)
    update = index.append(tmp_path, EXP, recs[:5])
    assert update.added == len(recs)  # rebuilt from the JSON records
    assert index.current_schema(index.parts(tmp_path, EXP))
    sizes = {r["key"]: (root / "runs" / f"{r['key']}.json").stat().st_size for r in recs}
    assert pq.read_table(index.parts(tmp_path, EXP)[0]).equals(index.to_table(recs, sizes))


def test_nightly_baseline_and_site_read_the_same_from_index_and_records(tmp_path: Path) -> None:
    root = layout.experiment_dir(tmp_path, EXP)
    nights = [records(12, seed=n, start=100 * n) for n in range(1, 5)]
    for recs in nights:
        for r in recs:  # the same points every night: comparable groups
            r["inputs"] = {"model": r["point"]["model"], "size": r["point"]["size"]}
            r["alias"] = "demo"
            r["metrics"] = {"z_lat": r["metrics"].get("z_lat") or
                            {"value": 1.0, "unit": "us", "better": "lower"}}  # fmt: skip
    hist = [
        {"night": n + 1, "git": {"commit": f"c{n}"},
         "experiments": {EXP: {"keys": [r["key"] for r in recs], "flagged": []}}}
        for n, recs in enumerate(nights[:-1])
    ]  # fmt: skip
    tonight = nights[-1]
    for recs in nights[:-1]:
        write(root, recs)

    def baselines() -> dict:
        got = history.baselines(tmp_path, hist, EXP, tonight, lambda m: 2)
        return {k: (b.values, [n.night for n in b.nights], b.notes()) for k, b in got.items()}

    def site() -> tuple[list[dict], list[Skipped]]:
        skipped: list[Skipped] = []
        return list(read_records(root / "runs", skipped, None, update=False)), skipped

    site_json = site()
    assert not index.parts(tmp_path, EXP)  # read-only: the JSON answered
    from_json = baselines()
    assert from_json and all(v[0] for v in from_json.values())
    assert index.parts(tmp_path, EXP)  # the nightly indexed what it read
    indexed = lookup.from_index(index.parts(tmp_path, EXP), [r["key"] for r in nights[0]])
    assert len(indexed) == len(nights[0])
    assert baselines() == from_json  # now from the index
    assert site() == site_json
    (root / "runs" / f"{nights[0][0]['key']}.json").write_text("{broken")
    shutil.rmtree(root / "index")
    _, skipped = site()  # the JSON path names a corrupt record
    assert [s.file for s in skipped] == [str(root / "runs" / f"{nights[0][0]['key']}.json")]
