"""Three-way verdicts of claim conditions, from intervals over repetitions.

Why separate from the language: claims.py defines and checks what a spec may say
before anything runs; this module is where measured data meets a claim (each kind's
own evaluation is in its module under efflab.papers.kinds, built on the helpers here). Every
statistic comes with its confidence interval (efflab.papers.bootstrap) and the
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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from efflab.papers import kinds
from efflab.papers.bootstrap import METHOD, Estimate, EvalError
from efflab.papers.claims import (
    ERROR,
    FAIL,
    INCONCLUSIVE,
    PASS,
    Condition,
    Select,
    is_num,
    param_column,
    render,
    same_value,
)
from efflab.papers.plancheck import values as planned_values
from efflab.papers.samples import MIN_TIMING_REPS, Samples, planned

__all__ = ["EvalError", "Outcome", "evaluate", "rows", "three_way", "few", "unsure"]


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


def unsure(est: Estimate) -> bool:
    """Timings that cannot decide: too few repetitions, or taken on a contended machine
    (a busy neighbour slows one arm more than another; the interval does not know)."""
    if est.exact:
        return False
    return est.timing and (est.n_min < MIN_TIMING_REPS or est.contended > 0)


def three_way(ok, est: Estimate) -> str:
    """pass / fail / inconclusive of a monotone condition `ok` on an interval."""
    if unsure(est):
        return INCONCLUSIVE
    lo, hi = ok(est.low), ok(est.high)
    if lo and hi:
        return PASS
    if not lo and not hi:
        return FAIL
    return INCONCLUSIVE


def few(est: Estimate) -> str:
    if est.exact:
        return "; exact: an arm against itself (paired), whatever the machine's load"
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


def evaluate(cond: Condition, samples: Mapping[str, Samples], paired: bool = False) -> Outcome:
    """Decide a condition on the samples; errors come back as an `error` Outcome.

    `paired`: a point read twice is one sample, resampled once (placebos: both sides
    from one arm are then exactly equal, so only the condition's bar can make it hold).
    """
    try:
        return kinds.evaluate(cond, samples, paired)
    except EvalError as exc:
        return Outcome(ERROR, "—", str(exc))


def axis(sel: Select, param: str, samples: Mapping[str, Samples]) -> list[Any]:
    s = samples.get(sel.experiment)
    if s is None or s.reps.empty:
        raise EvalError(f"experiment '{sel.experiment}' produced no successful records")
    vals = planned_values(planned(s, sel), param)
    if len(vals) < 2:
        raise EvalError(f"{render(sel)} has {len(vals)} value(s) of {param}; 2+ needed")
    return vals


def natural(keys: list[Any]) -> list[Any]:
    return sorted(keys, key=lambda k: (0, float(k), "") if is_num(k) else (1, 0.0, str(k)))


def combine_statuses(statuses: list[str]) -> str:
    if all(s == PASS for s in statuses):
        return PASS
    if any(s == FAIL for s in statuses):
        return FAIL
    return INCONCLUSIVE
