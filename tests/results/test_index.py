"""The columnar index: same table as the JSON records, append-only, rebuilt bit for bit."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
from conftest import efflab

from efflab.core import layout
from efflab.results import index, tables


def synth(n: int, seed: int = 0, start: int = 0) -> list[dict]:
    rnd = random.Random(seed)
    recs = []
    for i in range(start, start + n):
        point = {"model": f"m{i % 3}", "size": [1, 2.5, None][i % 3 if i % 7 else 2]}
        if i % 5 == 0:
            point["n"] = i % 2  # a parameter named like a statistics column
        recs.append(
            {
                "key": f"{i:020x}",
                "run_id": "r1",
                "status": "ok",
                "point": point,
                "repetition": i // 10,
                "metrics": {
                    "lat": {"value": rnd.gauss(100, 5), "unit": "us", "better": "lower"},
                    "acc": {"value": rnd.random(), "unit": "1", "better": "higher"},
                },
            }
        )
    return recs


def write_records(repo: Path, recs: list[dict]) -> None:
    d = layout.runs_dir(repo, "synth")
    d.mkdir(parents=True, exist_ok=True)
    for r in recs:
        (d / f"{r['key']}.json").write_text(json.dumps(r))


def test_index_aggregates_exactly_like_the_records(tmp_path: Path) -> None:
    recs = synth(300)
    write_records(tmp_path, recs)
    index.rebuild(tmp_path, "synth")
    for params, metrics in ((["model", "size", "n"], None), (["size"], ["lat"]), ([], None)):
        want = tables.aggregate(recs, params, metrics)
        got = index.aggregate(tmp_path, "synth", params, metrics)
        pd.testing.assert_frame_equal(got, want)
        assert tables.content_hash(got) == tables.content_hash(want)
    keys = {r["key"] for r in recs[:40]}
    pd.testing.assert_frame_equal(
        index.aggregate(tmp_path, "synth", ["model"], keys=keys),
        tables.aggregate(recs[:40], ["model"]),
    )


def test_append_adds_only_new_records_and_matches_a_rebuild(tmp_path: Path) -> None:
    first, night = synth(200), synth(50, seed=1, start=200)
    write_records(tmp_path, first)
    assert index.append(tmp_path, "synth", first).added == 200
    assert index.append(tmp_path, "synth", first).added == 0  # nothing new: no new part
    write_records(tmp_path, night)
    update = index.append(tmp_path, "synth", first[:10] + night)
    assert update.added == 50 and update.part is not None
    assert len(index.parts(tmp_path, "synth")) == 2
    incremental = index.aggregate(tmp_path, "synth", ["model", "size"])
    pd.testing.assert_frame_equal(incremental, tables.aggregate(first + night, ["model", "size"]))

    index.rebuild(tmp_path, "synth")
    (part,) = index.parts(tmp_path, "synth")
    once = part.read_bytes()
    index.rebuild(tmp_path, "synth")
    assert index.parts(tmp_path, "synth")[0].read_bytes() == once  # bit for bit
    pd.testing.assert_frame_equal(
        index.aggregate(tmp_path, "synth", ["model", "size"]), incremental
    )


def test_failed_records_are_not_indexed(tmp_path: Path) -> None:
    recs = synth(5)
    recs[0]["status"] = "failed"
    index.append(tmp_path, "synth", recs)
    assert index.indexed_keys(tmp_path, "synth") == {r["key"] for r in recs[1:]}


def test_runs_index_their_records_and_reindex_reproduces_it(tiny_repo: Path) -> None:
    efflab(tiny_repo, "run", "demo", "--quick", check=True)
    (part,) = index.parts(tiny_repo, "demo")
    before = part.read_bytes()
    recs = index.load_json_records(tiny_repo, "demo")
    assert index.indexed_keys(tiny_repo, "demo") == {r["key"] for r in recs}
    latest, _ = tables.load(tiny_repo, "demo")
    got = index.aggregate(tiny_repo, "demo", ["n", "scale"])  # the plan's parameters
    assert tables.content_hash(got) == tables.content_hash(latest)

    r = efflab(tiny_repo, "results", "reindex", "demo", "--json", check=True)
    assert json.loads(r.stdout)[0]["records"] == 4
    assert index.parts(tiny_repo, "demo")[0].read_bytes() == before


def test_keys_files_answer_which_keys_are_indexed_and_a_collision_costs_no_error(
    tmp_path: Path,
) -> None:
    """Each part has its keys file; "which of these keys are indexed" reads only the
    parts that may hold one; a part without one (older, or mid-write) is always read,
    and a hash collision only costs the exact read."""
    first, night = synth(100), synth(30, seed=1, start=100)
    index.append(tmp_path, "synth", first)
    index.append(tmp_path, "synth", night)
    ps = index.parts(tmp_path, "synth")
    assert len(ps) == 2 and all(index.keys_file(p).stat().st_size > 0 for p in ps)
    new = [f"{i:020x}" for i in range(500, 520)]
    assert index.may_hold(ps, new) == []  # a night of new keys touches no part
    assert index.may_hold(ps, [first[3]["key"], *new]) == [ps[0]]
    assert index.already_indexed(tmp_path, "synth", [night[0]["key"], *new]) == {night[0]["key"]}
    index.keys_file(ps[1]).unlink()  # a part from before keys files: read every time
    assert index.may_hold(ps, new) == [ps[1]]
    assert index.already_indexed(tmp_path, "synth", [night[5]["key"]]) == {night[5]["key"]}
    # the new keys colliding with the first part's: the exact read still answers right
    kf = index.keys_file(ps[0])
    both = index.np.union1d(index.np.fromfile(kf, dtype="<u8"), index.key_hashes(new))
    both.astype("<u8").tofile(kf)
    assert index.may_hold(ps, new) == ps
    assert index.already_indexed(tmp_path, "synth", new) == set()
    assert index.append(tmp_path, "synth", first + night).added == 0
    # a rebuild writes the keys file as deterministically as the part
    write_records(tmp_path, first + night)
    index.rebuild(tmp_path, "synth")
    (part,) = index.parts(tmp_path, "synth")
    once = index.keys_file(part).read_bytes()
    assert len(once) == 8 * 130
    index.rebuild(tmp_path, "synth")
    assert index.keys_file(index.parts(tmp_path, "synth")[0]).read_bytes() == once
