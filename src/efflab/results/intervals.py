"""The one interval of a point's metric: a percentile bootstrap of the median over the
point's repetitions (95%), used by tables, the site and the optimize report alike
(paper reports bootstrap their claim statistics the same way: efflab.papers.bootstrap
takes CONFIDENCE, N_RESAMPLES and SEED from here).

Why the median and a percentile bootstrap: timings are skewed and repetitions few;
a mean ± t·s/√n interval assumes normality and runs below zero for a positive metric
(a table once said ci95_low < 0 for a latency). A percentile bootstrap interval lies
between resampled medians, so it never leaves the observed values, hence never the
metric's domain; it is clipped to [min, max] anyway against rounding.

How: for an odd number of repetitions n the bootstrap distribution of the median is
known exactly (the resampled median is <= the k-th smallest value iff at least
(n+1)/2 of n draws are, each with probability k/n), so its quantiles are order
statistics and no resampling is needed; for an even n it is the mean of two order
statistics, whose pair's distribution depends on n only and is estimated once from
seeded resamples of ranks. Either way every group of a table costs a sort, not
thousands of resamples.
With one repetition there is no interval (NaN).
"""

from __future__ import annotations

from functools import cache

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000
SEED = 0
STATISTIC = "median"
METHOD = "bootstrap-percentile"


def describe() -> dict[str, object]:
    """What a table's manifest states about its ci95_low / ci95_high columns."""
    return {
        "method": METHOD,
        "statistic": STATISTIC,
        "confidence": CONFIDENCE,
        "over": "repetitions of each point",
        "resamples": N_RESAMPLES,
        "seed": SEED,
        "odd_n": "exact bootstrap distribution of the median (order statistics)",
        "domain": "within the observed values (so within the metric's domain)",
        "n1": "no interval (NaN)",
    }


@cache
def _odd_ranks(n: int) -> tuple[int, int]:
    """0-based order statistics that bound the exact bootstrap median interval."""
    from scipy.special import bdtr  # binomial CDF without scipy.stats' import cost

    half = (n + 1) // 2
    # P(resampled median <= x_(k)) = P(Binom(n, k/n) >= half) = 1 - bdtr(half - 1, n, k/n)
    cdf = [1.0 - float(bdtr(half - 1, n, k / n)) for k in range(1, n + 1)]
    lo_q, hi_q = (1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2
    lo = next(k for k, c in enumerate(cdf) if c >= lo_q)
    hi = next(k for k, c in enumerate(cdf) if c >= hi_q - 1e-12)
    return lo, hi


@cache
def _even_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The (i, j) order-statistic pairs a resample's median averages, with their
    probabilities, estimated from N_RESAMPLES × 100 seeded resamples of ranks (the
    distribution depends on n only, so the values are never resampled)."""
    rng = np.random.default_rng(SEED)
    ranks = np.sort(rng.integers(0, n, size=(N_RESAMPLES * 100, n)), axis=1)
    mid = ranks[:, [n // 2 - 1, n // 2]]
    pairs, counts = np.unique(mid, axis=0, return_counts=True)
    return pairs, counts / counts.sum()


def median_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intervals for rows of `values` (groups × n repetitions, all the same n)."""
    g, n = values.shape
    if n < 2:
        nan = np.full(g, np.nan)
        return nan, nan
    xs = np.sort(values, axis=1)
    if n % 2:
        lo, hi = _odd_ranks(n)
        low, high = xs[:, lo], xs[:, hi]
    else:  # the median of a resample is the mean of two order statistics: its
        pairs, cum = _even_pairs(n)  # distribution over (i, j) pairs, weighed once per n
        meds = (xs[:, pairs[:, 0]] + xs[:, pairs[:, 1]]) / 2  # groups × pairs
        order = np.argsort(meds, axis=1, kind="stable")
        w = np.cumsum(cum[order], axis=1)
        qs = ((1 - CONFIDENCE) / 2, 1 - (1 - CONFIDENCE) / 2)
        picked = [np.argmax(w >= q - 1e-12, axis=1) for q in qs]
        rows = np.arange(g)
        low = meds[rows, order[rows, picked[0]]]
        high = meds[rows, order[rows, picked[1]]]
    return np.clip(low, xs[:, 0], xs[:, -1]), np.clip(high, xs[:, 0], xs[:, -1])


def grouped_median_intervals(groups: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One interval per group of repetitions (any sizes): groups of one size at once."""
    low, high = np.full(len(groups), np.nan), np.full(len(groups), np.nan)
    by_n: dict[int, list[int]] = {}
    for i, v in enumerate(groups):
        by_n.setdefault(len(v), []).append(i)
    for n, rows in by_n.items():
        if n < 2:
            continue
        lo, hi = median_interval(np.vstack([groups[i] for i in rows]).astype(float))
        low[rows], high[rows] = lo, hi
    return low, high
