"""The claim condition language on hand-made tables: pass, fail, and every way to error.

Samples are built by efflab.papers.samples.from_records from hand-written run records
(the shape efflab.results.records writes), so they are what `reproduce` evaluates.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from efflab.core.errors import BadInput
from efflab.papers import claims, plancheck
from efflab.papers.evaluate import evaluate
from efflab.papers.samples import Samples, from_records

UNITS = {"tbt_p99_ms": ("ms", "lower"), "throughput_tok_s": ("tokens/s", "higher")}


def rec(point: dict[str, Any], **metrics: float) -> dict[str, Any]:
    return {
        "point": point,
        "metrics": {
            k: {"value": v, "unit": UNITS.get(k, ("x", "lower"))[0], "better": "lower"}
            for k, v in metrics.items()
        },
    }


def samples(recs: list[dict[str, Any]], params: list[str], name: str) -> Samples:
    """Per-repetition samples of hand-made records; every recorded point is planned."""
    return from_records(name, recs, [r["point"] for r in recs], params)


@pytest.fixture(scope="module")
def serving() -> dict[str, pd.DataFrame]:
    """prefill-first stalls decodes at high rate; chunked keeps the tail low."""
    recs = []
    for rep in range(3):
        for policy, tbt, tput in [("prefill-first", 120.0, 100.0), ("chunked-256", 30.0, 95.0)]:
            for rate, scale in [("moderate", 0.5), ("high", 1.0)]:
                recs.append(
                    rec(
                        {"policy": policy, "rate": rate},
                        tbt_p99_ms=tbt * scale + rep,
                        throughput_tok_s=tput * scale,
                    )
                )
    return {"serving": samples(recs, ["policy", "rate"], "serving")}


@pytest.fixture(scope="module")
def sweep() -> dict[str, pd.DataFrame]:
    recs = [
        rec({"threshold": t, "model": m}, energy=e * k, latency=lat, macs=mac)
        for t, e in [(0.5, 0.2), (0.8, 0.3), (0.9, 0.5), (0.99, 0.9)]
        for m, k, lat, mac in [("a", 1.0, 5.0, 1.0), ("b", 1.1, 2.0, 3.0), ("c", 1.2, 9.0, 2.0)]
    ]
    # one parameter named like a statistics column: it becomes param_n in the table
    recs += [rec({"threshold": 0.5, "model": "d", "n": 4}, energy=1.0, latency=1.0, macs=1.0)]
    return {"sweep": samples(recs, ["threshold", "model", "n"], "sweep")}


def cond(
    raw: dict[str, Any], exps: list[str], target: claims.Const | None = None
) -> claims.Condition:
    from efflab.core.specio import validate

    validate({"x": raw}, _schema(), "spec.yaml")
    return claims.parse(raw, "$.check", exps, "spec.yaml", target)


def _schema() -> dict[str, Any]:
    from efflab.papers.spec import paper_schema

    sch = paper_schema()
    return {
        "$defs": sch["$defs"],
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/condition"}},
    }


def T(value: float) -> dict[str, Any]:
    """A threshold object, as every spec writes one (source: ours, with why)."""
    return {"value": value, "source": "ours", "why": "test bar"}


def sel(metric: str, **where: Any) -> dict[str, Any]:
    return {"metric": metric, "where": where}


RATIO = {
    "compare": {
        "left": {
            "ratio": [
                sel("tbt_p99_ms", policy="prefill-first", rate="high"),
                sel("tbt_p99_ms", policy="chunked-256", rate="high"),
            ]
        },
        "op": ">=",
        "right": T(3),
    }
}


def test_ratio_passes_and_renders_like_the_paper_sentence(serving) -> None:
    c = cond(RATIO, ["serving"])
    out = evaluate(c, serving)
    assert out.status == claims.PASS
    assert out.value == pytest.approx(121 / 31)
    assert claims.render(c) == (
        "median(tbt_p99_ms | policy=prefill-first, rate=high) / "
        "median(tbt_p99_ms | policy=chunked-256, rate=high) >= 3"
    )


def test_ratio_fails_honestly_when_threshold_not_met(serving) -> None:
    raw = {"compare": {**RATIO["compare"], "right": T(5)}}
    out = evaluate(cond(raw, ["serving"]), serving)
    assert out.status == claims.FAIL and out.high is not None and out.high < 5


def test_difference_and_two_sided_compare(serving) -> None:
    little_cost = {
        "compare": {
            "left": sel("throughput_tok_s", policy="chunked-256", rate="high"),
            "op": ">=",
            "right": {
                "difference": [sel("throughput_tok_s", policy="prefill-first", rate="high"), T(10)]
            },
        }
    }
    out = evaluate(cond(little_cost, ["serving"]), serving)
    assert out.status == claims.PASS and out.ours == "95 tokens/s vs 90 tokens/s"


def test_empty_selection_is_an_error_not_a_pass(serving) -> None:
    raw = {
        "compare": {
            "left": sel("tbt_p99_ms", policy="decode-first", rate="high"),
            "op": ">=",
            "right": T(0),
        }
    }
    out = evaluate(cond(raw, ["serving"]), serving)
    assert out.status == claims.ERROR and "covers no planned point" in out.detail


def test_wrong_metric_is_an_error(serving) -> None:
    raw = {
        "compare": {
            "left": sel("tbt_p999_ms", policy="chunked-256", rate="high"),
            "op": "<",
            "right": T(1e9),
        }
    }
    out = evaluate(cond(raw, ["serving"]), serving)
    assert out.status == claims.ERROR


def test_several_rows_need_agg(serving) -> None:
    raw = {"compare": {"left": sel("tbt_p99_ms", policy="chunked-256"), "op": ">", "right": T(0)}}
    assert evaluate(cond(raw, ["serving"]), serving).status == claims.ERROR
    raw["compare"]["left"]["agg"] = "max"
    out = evaluate(cond(raw, ["serving"]), serving)
    assert out.status == claims.PASS and out.value == pytest.approx(31.0)


def test_missing_experiment_table_and_nan_are_errors(serving) -> None:
    assert evaluate(cond(RATIO, ["serving"]), {}).status == claims.ERROR
    std_one = {
        "compare": {
            "left": {**sel("tbt_p99_ms", policy="chunked-256", rate="high"), "stat": "std"},
            "op": ">",
            "right": T(0),
        }
    }
    # spread of 30, 31, 32: some resamples repeat one value (std 0), so "std > 0" is
    # not certain at 95% from three repetitions
    assert evaluate(cond(std_one, ["serving"]), serving).status == claims.INCONCLUSIVE
    one = samples([rec({"p": 1}, tbt_p99_ms=1.0)], ["p"], "x")
    out = evaluate(
        cond(
            {"compare": {**std_one["compare"], "left": {"metric": "tbt_p99_ms", "stat": "std"}}},
            ["x"],
        ),
        {"x": one},
    )
    assert out.status == claims.ERROR and "NaN" in out.detail


def test_division_by_zero_is_an_error() -> None:
    t = samples([rec({"p": 1}, a=0.0), rec({"p": 2}, a=1.0)], ["p"], "x")
    raw = {"compare": {"left": {"ratio": [sel("a", p=2), sel("a", p=1)]}, "op": ">", "right": T(1)}}
    assert evaluate(cond(raw, ["x"]), {"x": t}).status == claims.ERROR


def test_trend_monotone_along_a_numeric_parameter(sweep) -> None:
    raw = {
        "trend": {
            "metric": "energy",
            "where": {"model": "a"},
            "along": "threshold",
            "direction": "increasing",
            "strict": True,
        }
    }
    out = evaluate(cond(raw, ["sweep"]), sweep)
    assert out.status == claims.PASS and out.ours == "0.2 x → 0.3 x → 0.5 x → 0.9 x"
    raw["trend"]["direction"] = "decreasing"
    assert evaluate(cond(raw, ["sweep"]), sweep).status == claims.FAIL
    raw["trend"]["order"] = [0.99, 0.9, 0.8, 0.5]  # explicit order reverses the axis
    assert evaluate(cond(raw, ["sweep"]), sweep).status == claims.PASS


def test_trend_with_an_unfixed_parameter_is_an_error(sweep) -> None:
    raw = {"trend": {"metric": "energy", "along": "threshold", "direction": "increasing"}}
    out = evaluate(cond(raw, ["sweep"]), sweep)
    assert out.status == claims.ERROR and "fix more parameters" in out.detail


def test_ranking_differ_and_same(sweep) -> None:
    raw = {
        "ranking": {
            "param": "model",
            "where": {"threshold": 0.9, "model": ["a", "b", "c"]},
            "first": {"metric": "macs"},
            "second": {"metric": "latency"},
            "expect": "differ",
        }
    }
    out = evaluate(cond(raw, ["sweep"]), sweep)
    assert out.status == claims.PASS
    assert out.ours == "by macs: a < c < b; by latency: b < a < c"
    raw["ranking"]["expect"] = "same"
    assert evaluate(cond(raw, ["sweep"]), sweep).status == claims.FAIL


def test_param_named_like_a_stat_column(sweep) -> None:
    raw = {"compare": {"left": sel("energy", n=4), "op": "<=", "right": T(1)}}
    out = evaluate(cond(raw, ["sweep"]), sweep)
    assert out.status == claims.PASS


def test_within_paper_value_uses_claim_target(serving) -> None:
    raw = {"within": {"value": RATIO["compare"]["left"], "rel_tol": T(0.1)}}
    assert (
        evaluate(cond(raw, ["serving"], target=claims.Const(4.0, "paper", "t")), serving).status
        == claims.PASS
    )
    assert (
        evaluate(cond(raw, ["serving"], target=claims.Const(6.0, "paper", "t")), serving).status
        == claims.FAIL
    )
    with pytest.raises(BadInput) as e:
        cond(raw, ["serving"])  # no target and no paper value
    assert e.value.path == "$.check.within.target"


def test_all_and_any_never_hide_an_error(serving) -> None:
    bad = {
        "compare": {"left": sel("tbt_p99_ms", policy="nope", rate="high"), "op": ">", "right": T(0)}
    }
    fail = {"compare": {**RATIO["compare"], "right": T(100)}}
    assert evaluate(cond({"all": [RATIO, RATIO]}, ["serving"]), serving).status == claims.PASS
    assert evaluate(cond({"all": [RATIO, fail]}, ["serving"]), serving).status == claims.FAIL
    assert evaluate(cond({"any": [RATIO, fail]}, ["serving"]), serving).status == claims.PASS
    assert evaluate(cond({"any": [RATIO, bad]}, ["serving"]), serving).status == claims.ERROR


@pytest.mark.parametrize(
    "raw, path",
    [
        ({"compare": {"left": T(1), "op": "=>", "right": T(2)}}, "$.x.compare.op"),
        ({"compare": {"left": T(1), "op": ">"}}, "$.x.compare"),
        ({"compare": RATIO["compare"], "trend": {}}, "$.x"),
        ({"eval": "1 > 0"}, "$.x"),
        ({"trend": {"metric": "a", "along": "b", "direction": "up"}}, "$.x.trend.direction"),
    ],
)
def test_malformed_conditions_are_bad_input_with_a_path(raw, path) -> None:
    from efflab.core.specio import validate

    with pytest.raises(BadInput) as e:
        validate({"x": raw}, _schema(), "spec.yaml")
    assert e.value.path.startswith(path) and e.value.file == "spec.yaml"


CAT = {
    "serving": plancheck.Catalog(
        "serving",
        ["tbt_p99_ms", "throughput_tok_s"],
        ["policy", "rate"],
        [
            {"policy": p, "rate": r}
            for p in ["prefill-first", "chunked-256"]
            for r in ["moderate", "high"]
        ],
    )
}


def test_plan_check_accepts_valid_claims() -> None:
    plancheck.check(cond(RATIO, ["serving"]), CAT, "p.yaml")
    trend = {
        "trend": {
            "metric": "tbt_p99_ms",
            "where": {"policy": "chunked-256"},
            "along": "rate",
            "direction": "decreasing",
            "order": ["high", "moderate"],
        }
    }
    plancheck.check(cond(trend, ["serving"]), CAT, "p.yaml")


@pytest.mark.parametrize(
    "raw, path, found",
    [
        (
            {
                "compare": {
                    "left": sel("tbt_p999_ms", policy="chunked-256", rate="high"),
                    "op": ">",
                    "right": T(0),
                }
            },
            "$.check.compare.left.metric",
            "tbt_p999_ms",
        ),
        (
            {
                "compare": {
                    "left": sel("tbt_p99_ms", policy="chunked-512", rate="high"),
                    "op": ">",
                    "right": T(0),
                }
            },
            "$.check.compare.left.where.policy",
            "chunked-512",
        ),
        (
            {
                "compare": {
                    "left": sel("tbt_p99_ms", policy="chunked-256", load="high"),
                    "op": ">",
                    "right": T(0),
                }
            },
            "$.check.compare.left.where.load",
            "load",
        ),
        (
            {
                "compare": {
                    "left": sel("tbt_p99_ms", policy="chunked-256"),
                    "op": ">",
                    "right": T(0),
                }
            },
            "$.check.compare.left.where",
            None,
        ),
        (
            {
                "all": [
                    RATIO,
                    {
                        "compare": {
                            "left": {
                                "metric": "tbt_p99_ms",
                                "where": {"rate": "high"},
                                "experiment": "sim",
                            },
                            "op": ">",
                            "right": T(0),
                        }
                    },
                ]
            },
            "$.check.all[1].compare.left.experiment",
            "sim",
        ),
        (
            {
                "trend": {
                    "metric": "tbt_p99_ms",
                    "where": {"policy": "chunked-256", "rate": "high"},
                    "along": "rate",
                    "direction": "increasing",
                }
            },
            "$.check.trend.where.rate",
            "rate",
        ),
        (
            {
                "trend": {
                    "metric": "tbt_p99_ms",
                    "where": {"policy": "chunked-256"},
                    "along": "rate",
                    "direction": "increasing",
                    "order": ["low", "high"],
                }
            },
            "$.check.trend.order[0]",
            "low",
        ),
    ],
)
def test_plan_check_rejects_what_would_error(raw, path, found) -> None:
    with pytest.raises(BadInput) as e:
        plancheck.check(cond(raw, ["serving"]), CAT, "p.yaml")
    assert e.value.path == path and e.value.file == "p.yaml"
    if found is not None:
        assert e.value.found == found
