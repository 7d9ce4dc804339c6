"""Tables: aggregation statistics, versioning rules, diff."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from efflab.core.errors import BadInput
from efflab.results import tables


def rec(point: dict, **metrics: float) -> dict:
    return {
        "point": point,
        "metrics": {k: {"value": v, "unit": "ms", "better": "lower"} for k, v in metrics.items()},
    }


RECS = [rec({"model": "a", "bs": 1}, lat=v) for v in (1.0, 2.0, 3.0)] + [
    rec({"model": "b", "bs": 1}, lat=v, acc=0.9) for v in (10.0, 10.0)
]


def test_long_table_columns_and_stats() -> None:
    df = tables.aggregate(RECS, ["model", "bs"])
    assert list(df.columns) == ["model", "bs", *tables.STAT_COLUMNS]
    a = df[(df.model == "a") & (df.metric == "lat")].iloc[0]
    assert (a.n, a["mean"], a["median"], a["std"], a["min"], a["max"]) == (
        3,
        2.0,
        2.0,
        1.0,
        1.0,
        3.0,
    )
    # t(0.975, df=2) = 4.3027: CI half-width 4.3027 * 1 / sqrt(3)
    assert a.ci95_high - a["mean"] == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
    assert len(df) == 3


def test_single_repetition_has_no_ci() -> None:
    df = tables.aggregate([rec({"m": 1}, lat=5.0)], ["m"])
    assert df.n[0] == 1 and math.isnan(df.ci95_low[0]) and math.isnan(df["std"][0])


def test_metric_filter_and_param_name_collision() -> None:
    df = tables.aggregate([rec({"n": 4}, lat=1.0, acc=2.0)], ["n"], metrics=["acc"])
    assert list(df.columns)[0] == "param_n" and list(df.metric) == ["acc"]


def test_versions_are_immutable_and_deduplicated(tmp_path: Path) -> None:
    df = tables.aggregate(RECS, ["model", "bs"])
    assert tables.save(tmp_path, "e", df, "abc") == (1, True)
    assert tables.save(tmp_path, "e", df, "abc") == (1, False)  # identical content
    df2 = tables.aggregate(RECS[:3], ["model", "bs"])
    assert tables.save(tmp_path, "e", df2, None) == (2, True)
    m = tables.manifest(tmp_path, "e", 2)
    assert m["parent"] == 1 and m["content_hash"] == tables.content_hash(df2)
    for f in ("table.parquet", "table.csv", "table.md", "manifest.json"):
        assert (tmp_path / "results/e/tables/v2" / f).exists()
    back, v = tables.load(tmp_path, "e")
    assert v == 2 and tables.content_hash(back) == tables.content_hash(df2)
    assert not list((tmp_path / "results/e/tables").glob(".tmp-*"))


def test_diff_reports_change_and_missing_points() -> None:
    a = tables.aggregate(RECS, ["model", "bs"])
    b = tables.aggregate(RECS[:3] + [rec({"model": "c", "bs": 1}, lat=1.0)], ["model", "bs"])
    d = tables.diff(a, b)
    assert set(d.status) == {"both", "only in A", "only in B"}


def test_load_unknown_experiment(tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        tables.load(tmp_path, "nothing")


def test_diff_across_versions_with_different_parameter_columns() -> None:
    a = tables.aggregate(RECS, ["model", "bs"])
    b = tables.aggregate(
        [rec({"model": "a", "seed": 1}, lat=2.0), rec({"model": "a", "seed": 2}, lat=4.0)],
        ["model", "seed"],
    )
    d = tables.diff(a, b)  # bs only in A, seed only in B: no KeyError, no false match
    assert {"model", "bs", "seed"} <= set(d.columns)
    assert (d.status == "both").sum() == 0
    only_b = d[d.status == "only in B"]
    assert set(only_b.seed) == {"1", "2"} and set(only_b.bs) == {tables.NOT_A_PARAMETER}
    assert set(d[d.status == "only in A"].seed) == {tables.NOT_A_PARAMETER}
    # a parameter added in B (constant 1): A's rows are not silently matched to it
    b2 = tables.aggregate(RECS, ["model", "bs"]).drop(columns="bs")
    d2 = tables.diff(b2, b2.assign(extra=1))
    assert (d2.status == "both").sum() == 0 and len(d2) == 2 * len(b2)
