"""Intervals and the three-way verdict on hand-made repetitions.

Clear pass, clear fail, a straddle, a timing claim with one repetition, and a point an
`agg` covers without a successful record — each decided by the real bootstrap
(efflab.papers.bootstrap) on samples built like reproduce builds them.
"""

from __future__ import annotations

from typing import Any

import pytest

from efflab.papers import claims
from efflab.papers.evaluate import evaluate
from efflab.papers.samples import from_records

OURS = {"source": "ours", "why": "test bar"}


def rec(arm: str, rep: int, v: float) -> dict[str, Any]:
    return {
        "point": {"arm": arm},
        "repetition": rep,
        "metrics": {"t_ms": {"value": v, "unit": "ms", "better": "lower"}},
    }


def samples(a: list[float], b: list[float], timing: bool = True, planned_extra=()) -> dict:
    recs = [rec("a", i, v) for i, v in enumerate(a)] + [rec("b", i, v) for i, v in enumerate(b)]
    points = [{"arm": "a"}, {"arm": "b"}, *({"arm": x} for x in planned_extra)]
    return {"e": from_records("e", recs, points, ["arm"], timing)}


def ratio_at_least(bar: float) -> claims.Condition:
    raw = {
        "compare": {
            "left": {
                "ratio": [
                    {"metric": "t_ms", "where": {"arm": "a"}},
                    {"metric": "t_ms", "where": {"arm": "b"}},
                ]
            },
            "op": ">=",
            "right": {"value": bar, **OURS},
        }
    }
    return claims.parse(raw, "$.check", ["e"], "p.yaml")


@pytest.mark.parametrize(
    "a, b, status",
    [
        ([30.0, 31.0, 29.5, 30.5], [10.0, 10.2, 9.9, 10.1], claims.PASS),  # ~3x, tight
        ([12.0, 12.5, 11.8, 12.2], [10.0, 10.2, 9.9, 10.1], claims.FAIL),  # ~1.2x, tight
        ([18.0, 45.0, 30.0, 22.0], [10.0, 10.2, 9.9, 10.1], claims.INCONCLUSIVE),  # straddles 2
    ],
    ids=["clear-pass", "clear-fail", "straddle"],
)
def test_three_way_verdict_from_the_interval(a, b, status) -> None:
    out = evaluate(ratio_at_least(2.0), samples(a, b))
    assert out.status == status, out.detail
    assert out.low is not None and out.high is not None and out.low <= out.value <= out.high
    if status == claims.PASS:
        assert out.low >= 2.0
    elif status == claims.FAIL:
        assert out.high < 2.0
    else:
        assert out.low < 2.0 <= out.high
    assert "[" in out.ours  # the interval is shown with the value


def test_one_repetition_of_a_timing_point_is_inconclusive_not_a_pass() -> None:
    out = evaluate(ratio_at_least(2.0), samples([30.0], [10.0]))
    assert out.status == claims.INCONCLUSIVE and "need 3" in out.detail
    # the same numbers from a deterministic (non-timing) experiment decide exactly
    out = evaluate(ratio_at_least(2.0), samples([30.0], [10.0], timing=False))
    assert out.status == claims.PASS and out.low == out.high == pytest.approx(3.0)


def test_timings_measured_on_a_contended_machine_cannot_decide() -> None:
    """A clear pass and a clear fail both become inconclusive when one repetition of
    one arm was measured contended (still, after re-measuring); a non-timing
    experiment's contended flag changes nothing."""
    for a, want in (([30.0, 31.0, 29.5], claims.PASS), ([12.0, 12.5, 11.8], claims.FAIL)):
        b = [10.0, 10.2, 9.9]
        clean = samples(a, b)
        assert evaluate(ratio_at_least(2.0), clean).status == want
        busy = samples(a, b)
        busy["e"].reps.loc[busy["e"].reps.index[1], "contended"] = True
        out = evaluate(ratio_at_least(2.0), busy)
        assert out.status == claims.INCONCLUSIVE, out.detail
        assert "1 timing repetition(s) measured on a contended machine" in out.detail
        calm = samples(a, b, timing=False)
        calm["e"].reps["contended"] = True
        assert evaluate(ratio_at_least(2.0), calm).status == want


def test_a_point_under_agg_without_a_record_is_an_error() -> None:
    raw = {
        "compare": {
            "left": {"metric": "t_ms", "where": {"arm": ["a", "b", "c"]}, "agg": "sum"},
            "op": ">",
            "right": {"value": 0, **OURS},
        }
    }
    cond = claims.parse(raw, "$.check", ["e"], "p.yaml")
    # arm c was planned but its only run failed: no record, so the sum is not decidable
    s = samples([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], planned_extra=["c"])
    out = evaluate(cond, s)
    assert out.status == claims.ERROR and '"arm": "c"' in out.detail and "agg sum" in out.detail
    # with every planned point recorded the same claim is decided
    full = samples([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    raw["compare"]["left"]["where"]["arm"] = ["a", "b"]
    assert evaluate(claims.parse(raw, "$.check", ["e"], "p.yaml"), full).status == claims.PASS


def test_the_interval_is_the_same_on_every_call() -> None:
    s = samples([18.0, 45.0, 30.0, 22.0], [10.0, 10.2, 9.9, 10.1])
    a, b = evaluate(ratio_at_least(2.0), s), evaluate(ratio_at_least(2.0), s)
    assert (a.low, a.high) == (b.low, b.high)  # seeded: a verdict does not flip on reruns


def test_ranking_needs_certain_pairs() -> None:
    recs = []
    for m, macs, lat in [
        ("x", 1.0, [9.0, 9.1, 9.2]),
        ("y", 2.0, [3.0, 3.1, 2.9]),
        ("z", 3.0, [5.0, 5.1, 4.9]),
    ]:
        for r, v in enumerate(lat):
            recs.append(
                {
                    "point": {"model": m},
                    "repetition": r,
                    "metrics": {
                        "macs": {"value": macs, "unit": "G", "better": "lower"},
                        "lat": {"value": v, "unit": "ms", "better": "lower"},
                    },
                }
            )
    s = {"e": from_records("e", recs, [{"model": m} for m in "xyz"], ["model"], True)}
    raw = {
        "ranking": {
            "param": "model",
            "first": {"metric": "macs"},
            "second": {"metric": "lat"},
            "expect": "differ",
        }
    }
    out = evaluate(claims.parse(raw, "$.check", ["e"], "p.yaml"), s)
    assert out.status == claims.PASS, out.detail
    raw["ranking"]["expect"] = "same"
    assert evaluate(claims.parse(raw, "$.check", ["e"], "p.yaml"), s).status == claims.FAIL
