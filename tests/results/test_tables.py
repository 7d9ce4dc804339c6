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
    # the bootstrap interval of a median of 3 repetitions: their range
    assert (a.ci95_low, a.ci95_high) == (1.0, 3.0)
    assert len(df) == 3


def test_intervals_are_the_bootstrap_of_the_median_and_stay_in_the_domain() -> None:
    """scipy's percentile bootstrap agrees (odd n exact, even n from rank resamples);
    a positive metric never gets a negative bound (the old mean ± t·s/√n did)."""
    import numpy as np
    from scipy import stats

    rng = np.random.default_rng(3)
    for n in (4, 5, 6, 7):
        xs = rng.lognormal(size=n)
        df = tables.aggregate([rec({"m": 1}, lat=float(v)) for v in xs], ["m"])
        want = stats.bootstrap((xs,), np.median, method="percentile", n_resamples=40000,
                               random_state=0).confidence_interval  # fmt: skip
        assert df.ci95_low[0] == pytest.approx(want.low, rel=0.02), n
        assert df.ci95_high[0] == pytest.approx(want.high, rel=0.02), n
    skewed = [0.01, 0.02, 0.03, 5.0]  # mean - t*s/sqrt(n) < 0 here
    df = tables.aggregate([rec({"m": 1}, lat=v) for v in skewed], ["m"])
    assert 0.01 <= df.ci95_low[0] <= df["median"][0] <= df.ci95_high[0] <= 5.0


def test_the_manifest_states_the_interval_method(tmp_path: Path) -> None:
    tables.save(tmp_path, "e", tables.aggregate(RECS, ["model", "bs"]), "abc")
    iv = tables.manifest(tmp_path, "e", 1)["interval"]
    assert iv["method"] == "bootstrap-percentile" and iv["statistic"] == "median"
    assert iv["confidence"] == 0.95 and iv["columns"] == ["ci95_low", "ci95_high"]


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


def test_wide_table_one_column_per_metric_inputs_by_their_own_names() -> None:
    recs = [rec({"n": 4, "dtype": "f32"}, lat=v, acc=0.5) for v in (1.0, 2.0, 3.0)]
    recs += [rec({"n": 8, "dtype": "f32"}, lat=5.0, acc=0.7)]
    long = tables.aggregate(recs, ["n", "dtype"])
    assert "param_n" in long.columns  # the long table keeps its count column `n`
    w = tables.wide(long)
    assert list(w.columns) == ["n", "dtype", "acc", "lat"]
    assert w.to_dict(orient="records") == [
        {"n": 4, "dtype": "f32", "acc": 0.5, "lat": 2.0},
        {"n": 8, "dtype": "f32", "acc": 0.7, "lat": 5.0},
    ]
    shown = tables.wide(long, with_interval=True)
    assert list(shown.columns) == ["n", "dtype", "acc [ms]", "lat [ms]"]
    assert shown["lat [ms]"][0] == "2 [1, 3]" and shown["lat [ms]"][1] == "5"
