"""Measurement intervals per objective, and rank ranges that do not order noise.

Why: a median of 3 timings is one draw; two entries whose repetitions overlap are not
known to differ, and a strict order between them would reward luck (and the farming
of resubmissions). So each objective gets an interval from its repetitions, and the
leaderboard gives every row a rank *range*:

- interval of a median: a distribution-free order-statistic interval (binomial);
  with few repetitions the widest one, [min, max], whose coverage 1 - 2^(1-n) is
  printed (75 % for n = 3) — honest about how little 3 runs say;
- interval of a mean: Student's t; of `worst`: [min, max];
- rank range of a row: its position when it takes the optimistic end of every
  interval and all others the pessimistic end (best rank), and the reverse (worst);
  rows whose rank ranges overlap are marked as statistical ties.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scipy import stats


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    coverage: float  # achieved (not nominal) coverage of the interval
    method: str

    def to_json(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "coverage": round(self.coverage, 4), "method": self.method}  # fmt: skip


def median_interval(values: list[float], confidence: float) -> Interval:
    """Narrowest symmetric order-statistic interval with coverage ≥ confidence (or [min, max])."""
    xs, n = sorted(values), len(values)
    if n == 1:
        return Interval(xs[0], xs[0], 0.0, "single run")
    best = Interval(xs[0], xs[-1], 1 - 2 * 0.5**n, f"order statistics [1, {n}] of {n}")
    for k in range(1, n // 2):  # [x_(k+1), x_(n-k)]: coverage P(k < B < n-k), B ~ Bin(n, 1/2)
        cov = float(stats.binom.cdf(n - k - 1, n, 0.5) - stats.binom.cdf(k, n, 0.5))
        if cov < confidence:
            break
        best = Interval(xs[k], xs[n - 1 - k], cov, f"order statistics [{k + 1}, {n - k}] of {n}")
    return best


def mean_interval(values: list[float], confidence: float) -> Interval:
    n = len(values)
    m = statistics.fmean(values)
    if n < 2:
        return Interval(m, m, 0.0, "single run")
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * statistics.stdev(values) / math.sqrt(n)  # fmt: skip
    return Interval(m - half, m + half, confidence, f"Student t, n={n}")


def interval(values: list[float], how: str, confidence: float) -> Interval:
    if how == "mean":
        return mean_interval(values, confidence)
    if how == "worst":
        return Interval(min(values), max(values), 1.0, f"range of {len(values)}")
    return median_interval(values, confidence)


def rank_ranges(
    items: list[Any],
    point: Callable[[Any], dict[str, float]],
    bounds: Callable[[Any], dict[str, tuple[float, float]]],
    signs: dict[str, float],
    order: Callable[[list[dict[str, float]]], list[int]],
) -> list[tuple[int, int]]:
    """(best, worst) 1-based rank of each item; `order` ranks a list of metric dicts.

    `signs[m]` is +1 when larger is better. For the best rank item i takes its
    interval's good end and every other item its bad end; for the worst, the reverse.
    """
    n = len(items)

    def end(j: int, good: bool) -> dict[str, float]:
        b, out = bounds(items[j]), dict(point(items[j]))
        for m, s in signs.items():
            lo, hi = b.get(m, (out[m], out[m]))
            out[m] = (hi if s > 0 else lo) if good else (lo if s > 0 else hi)
        return out

    ranges = []
    for i in range(n):
        best = order([end(j, j == i) for j in range(n)])
        worst = order([end(j, j != i) for j in range(n)])
        ranges.append((best.index(i) + 1, worst.index(i) + 1))
    return ranges


def tie_groups(ranges: list[tuple[int, int]]) -> list[list[int]]:
    """For each item, the other items whose rank range overlaps its own."""
    return [
        [j for j, (lo2, hi2) in enumerate(ranges) if j != i and lo2 <= hi and lo <= hi2]
        for i, (lo, hi) in enumerate(ranges)
    ]
