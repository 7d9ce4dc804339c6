"""Three-way verdicts of claim conditions, from intervals over repetitions.

Why separate from the language: claims.py defines and checks what a spec may say
before anything runs; this module is where measured data meets a claim. Every
statistic comes with its confidence interval (efflab.papers.intervals) and the
verdict is decided on the whole interval:

    pass          the whole interval satisfies the condition       -> "reproduced"
    fail          the whole interval violates it                   -> "not reproduced"
    inconclusive  it straddles, or a timing-sensitive point has
                  fewer than 3 repetitions, or timing repetitions
                  it reads were measured on a contended machine
                  (still, after re-measuring)                      -> "inconclusive"
    error         the data cannot decide (a covered point without a successful
                  record, no rows, NaN, division by zero)

Nothing passes by default. `rows` (summary-table rows of a selection) is kept for
the report's plots.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from efflab.papers.claims import (
    ERROR,
    FAIL,
    INCONCLUSIVE,
    OPS,
    PASS,
    Arith,
    Combine,
    Compare,
    Condition,
    Const,
    Ranking,
    Select,
    Trend,
    Within,
    is_num,
    param_column,
    render,
    same_value,
)
from efflab.papers.intervals import METHOD, Estimate, EvalError, Resolver, fmt_interval
from efflab.papers.plancheck import values as planned_values
from efflab.papers.samples import MIN_TIMING_REPS, Samples, planned

__all__ = ["EvalError", "Outcome", "evaluate", "rows"]


@dataclass
class Outcome:
    """Result of one condition: status, what we measured (with interval), and why."""

    status: str
    ours: str
    detail: str
    value: float | None = None
    low: float | None = None
    high: float | None = None
    n_min: int | None = None
    method: str = METHOD


def rows(sel: Select, tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Summary-table rows of a selection (for plots); empty is an error."""
    df = tables.get(sel.experiment)
    if df is None or df.empty:
        raise EvalError(f"experiment '{sel.experiment}' produced no table rows")
    mask = df["metric"] == sel.metric
    for k, v in sel.where:
        col = param_column(k)
        if col not in df.columns:
            raise EvalError(f"parameter '{k}' is not a column of the {sel.experiment} table")
        wants = v if isinstance(v, tuple) else (v,)
        mask &= df[col].map(lambda x, w=wants: any(same_value(x, y) for y in w)).astype(bool)
    out = df[mask]
    if out.empty:
        raise EvalError(f"{render(sel)} matches no row of the {sel.experiment} table")
    return out


def _unsure(est: Estimate) -> bool:
    """Timings that cannot decide: too few repetitions, or taken on a contended machine
    (a busy neighbour slows one arm more than another; the interval does not know)."""
    return est.timing and (est.n_min < MIN_TIMING_REPS or est.contended > 0)


def _three_way(ok, est: Estimate) -> str:
    """pass / fail / inconclusive of a monotone condition `ok` on an interval."""
    if _unsure(est):
        return INCONCLUSIVE
    lo, hi = ok(est.low), ok(est.high)
    if lo and hi:
        return PASS
    if not lo and not hi:
        return FAIL
    return INCONCLUSIVE


def _few(est: Estimate) -> str:
    if est.timing and est.n_min < MIN_TIMING_REPS:
        return (
            f"; only {est.n_min} repetition(s) of a timing-sensitive point (need {MIN_TIMING_REPS})"
        )
    if est.timing and est.contended:
        return (
            f"; {est.contended} timing repetition(s) measured on a contended machine "
            "(inconclusive: re-run on a quieter one)"
        )
    return f"; n={est.n_min} repetition(s) per point" if est.n_min else ""


def evaluate(cond: Condition, samples: Mapping[str, Samples]) -> Outcome:
    """Decide a condition on the samples; errors come back as an `error` Outcome."""
    try:
        if isinstance(cond, Combine):
            return _combine(cond, samples)
        return _EVAL[type(cond)](cond, samples)
    except EvalError as exc:
        return Outcome(ERROR, "—", str(exc))


def _compare(c: Compare, samples: Mapping[str, Samples]) -> Outcome:
    r = Resolver(samples)
    left, right = r.bind(c.left), r.bind(c.right)
    diff = r.bind(Arith("difference", c.left, c.right))
    lu, ru = r.unit(c.left), r.unit(c.right)
    est_l, est_r, est_d = r.estimate([left, right, diff], [lu, ru, lu or ru])
    status = _three_way(lambda x: OPS[c.op](x, 0.0), est_d)
    ours = fmt_interval(est_l)
    if not isinstance(c.right, Const):
        ours += f" vs {fmt_interval(est_r)}"
    detail = (
        f"{render(c.left)} = {fmt_interval(est_l)}; {c.op} {fmt_interval(est_r)}; "
        f"difference {fmt_interval(est_d)} (95% interval){_few(est_d)}"
    )
    return Outcome(status, ours, detail, est_l.value, est_l.low, est_l.high, est_d.n_min)


def _within(c: Within, samples: Mapping[str, Samples]) -> Outcome:
    r = Resolver(samples)
    (est,) = r.estimate([r.bind(c.value)], [r.unit(c.value)])
    tgt = c.target.value
    tols = [c.abs_tol.value if c.abs_tol else 0.0, c.rel_tol.value * abs(tgt) if c.rel_tol else 0.0]
    tol = max(tols)
    lo_b, hi_b = tgt - tol, tgt + tol
    status = _three_way(lambda x: lo_b <= x <= hi_b, est)
    if status == INCONCLUSIVE and (est.high < lo_b or est.low > hi_b):
        status = FAIL if not _unsure(est) else INCONCLUSIVE
    elif status == FAIL and est.low < lo_b and est.high > hi_b:
        status = INCONCLUSIVE  # the interval spans the whole band: cannot say it misses
    off = f" ({abs(est.value - tgt) / abs(tgt):.0%} off)" if tgt else ""
    detail = (
        f"{render(c.value)} = {fmt_interval(est)} vs target {tgt:g} ± {tol:.4g} "
        f"= [{lo_b:.4g}, {hi_b:.4g}]{off}{_few(est)}"
    )
    return Outcome(status, fmt_interval(est), detail, est.value, est.low, est.high, est.n_min)


def _axis(sel: Select, param: str, samples: Mapping[str, Samples]) -> list[Any]:
    s = samples.get(sel.experiment)
    if s is None or s.reps.empty:
        raise EvalError(f"experiment '{sel.experiment}' produced no successful records")
    vals = planned_values(planned(s, sel), param)
    if len(vals) < 2:
        raise EvalError(f"{render(sel)} has {len(vals)} value(s) of {param}; 2+ needed")
    return vals


def _natural(keys: list[Any]) -> list[Any]:
    return sorted(keys, key=lambda k: (0, float(k), "") if is_num(k) else (1, 0.0, str(k)))


def _combine_statuses(statuses: list[str]) -> str:
    if all(s == PASS for s in statuses):
        return PASS
    if any(s == FAIL for s in statuses):
        return FAIL
    return INCONCLUSIVE


def _trend(c: Trend, samples: Mapping[str, Samples]) -> Outcome:
    keys = _axis(c.sel, c.along, samples)
    if c.order is not None:
        keys = [next((k for k in keys if same_value(k, o)), o) for o in c.order]
    else:
        keys = _natural(keys)
    r = Resolver(samples)
    bound = [r.bind(c.sel, ((c.along, k),)) for k in keys]
    unit = r.unit(c.sel)
    ests = r.estimate(bound, [unit] * len(bound))
    pair_bound = [Resolver.minus(b, a) for a, b in zip(bound, bound[1:], strict=False)]
    d_ests = r.estimate(pair_bound, [unit] * len(pair_bound))
    ok = {
        ("increasing", True): lambda x: x > 0,
        ("increasing", False): lambda x: x >= 0,
        ("decreasing", True): lambda x: x < 0,
        ("decreasing", False): lambda x: x <= 0,
    }[(c.direction, c.strict)]
    status = _combine_statuses([_three_way(ok, d) for d in d_ests])
    ours = " → ".join(fmt_interval(e) for e in ests)
    steps = "; ".join(fmt_interval(d) for d in d_ests)
    detail = f"{c.along} = {' → '.join(map(str, keys))}: {ours}; steps {steps}{_few(d_ests[0])}"
    return Outcome(status, ours, detail, n_min=min(e.n_min for e in ests))


def _sign(e: Estimate) -> int | None:
    """+1 / -1 when the whole interval is on one side of 0, 0 for an exact tie."""
    if e.low > 0:
        return 1
    if e.high < 0:
        return -1
    if e.low == e.high == 0:
        return 0
    return None


def _ranking(c: Ranking, samples: Mapping[str, Samples]) -> Outcome:
    items = _natural(_axis(c.first, c.param, samples))
    r = Resolver(samples)
    firsts = [r.bind(c.first, ((c.param, k),)) for k in items]
    seconds = [r.bind(c.second, ((c.param, k),)) for k in items]
    pairs = list(itertools.combinations(range(len(items)), 2))
    d1 = r.estimate([Resolver.minus(firsts[i], firsts[j]) for i, j in pairs])
    d2 = r.estimate([Resolver.minus(seconds[i], seconds[j]) for i, j in pairs])
    point_a = r.estimate(firsts)
    point_b = r.estimate(seconds)
    few = any(_unsure(e) for e in d1 + d2)
    signs = [(_sign(a), _sign(b)) for a, b in zip(d1, d2, strict=True)]
    certain = [s for s in signs if s[0] is not None and s[1] is not None]
    disagree = [s for s in certain if s[0] != s[1]]
    all_certain = len(certain) == len(signs)
    if c.expect == "differ":
        status = PASS if disagree else (FAIL if all_certain else INCONCLUSIVE)
    else:
        status = FAIL if disagree else (PASS if all_certain else INCONCLUSIVE)
    if few:
        status = INCONCLUSIVE
    order_a = [items[i] for i in sorted(range(len(items)), key=lambda i: point_a[i].value)]
    order_b = [items[i] for i in sorted(range(len(items)), key=lambda i: point_b[i].value)]
    ours = (
        f"by {c.first.metric}: {' < '.join(map(str, order_a))}; "
        f"by {c.second.metric}: {' < '.join(map(str, order_b))}"
    )
    unsure = [
        f"{items[i]} vs {items[j]}" for (i, j), s in zip(pairs, signs, strict=True) if None in s
    ]
    detail = (
        f"{ours}; {len(disagree)} of {len(pairs)} pairs ordered oppositely with 95% confidence"
        + (f"; undecided pairs: {', '.join(unsure)}" if unsure else "")
        + _few(min(d1 + d2, key=lambda e: (e.n_min, -e.contended)))
    )
    return Outcome(status, ours, detail, n_min=min(e.n_min for e in d1 + d2))


def _combine(c: Combine, samples: Mapping[str, Samples]) -> Outcome:
    outs = [evaluate(p, samples) for p in c.parts]
    ours = "; ".join(dict.fromkeys(o.ours for o in outs))  # a range states its value once
    detail = "; ".join(f"[{o.status}] {o.detail}" for o in outs)
    st = [o.status for o in outs]
    if ERROR in st:  # a broken part never hides behind `any`
        return Outcome(ERROR, ours, detail)
    if c.kind == "all":
        status = _combine_statuses(st)
    else:
        status = PASS if PASS in st else (FAIL if all(s == FAIL for s in st) else INCONCLUSIVE)
    ns = [o.n_min for o in outs if o.n_min is not None]
    return Outcome(status, ours, detail, n_min=min(ns) if ns else None)


_EVAL = {Compare: _compare, Within: _within, Trend: _trend, Ranking: _ranking}
