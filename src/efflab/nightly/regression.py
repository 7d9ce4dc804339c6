"""Regression statistics: is tonight's sample of a metric worse than its baseline history?

Pure functions over lists of numbers, so they are tested on synthetic data and reused by
any view. The decision for one (point, metric) needs two things to hold:

1. *statistical*: a one-sided Mann-Whitney U test (scipy) of tonight's repetitions
   against the pooled repetitions of the last K nights says the shift is unlikely to be
   noise. The U test is rank based, so it assumes no distribution (timings are skewed
   and heavy-tailed) and one outlier repetition cannot carry it.
2. *practical*: the median moved by at least `min_effect` (relative) in the metric's
   worse direction (`better: lower|higher` from the run record).

Why both: with a large baseline a 1% drift becomes "significant", and nobody wants a
red nightly for 1%; with few repetitions a 50% jump can be noise. The U test only sees
within-night noise (it treats repetitions as independent); nights also drift as a
block (another job on the box, thermal state), which `min_effect` must absorb.

What the policy can and cannot detect (one-sided, no ties): the smallest p-value a
U test can reach with n baseline and m current samples is 1 / C(n+m, m). With m = 3
repetitions: one baseline night (n = 3) gives 0.05, so nothing is ever significant at
a corrected level; K = 5 nights (n = 15) give 1/816 = 0.0012; with m = 5 and K = 5
(n = 25), 1/142506. Comparisons that cannot reach their corrected level are reported
as `underpowered` rather than silently "unchanged".

Multiple comparisons: a suite compares hundreds of (point, metric) pairs each night;
testing each at 0.05 would fail most nights on noise alone. p-values are Holm-adjusted
over all noisy comparisons of the night (regressions and improvements as two separate
families), so `alpha` is the probability that a night with no real change reports any
regression at all (the family-wise error rate; with per-metric alphas it is at most
the largest of them). Noiseless metrics carry no noise, so any change at all is real:
those declared `noiseless: true` in the script's meta (or in a suite policy), and those
with no spread in the baseline nor tonight (LUT counts, model sizes, fixed-seed
accuracy). They are compared exactly (medians before/after, no `min_effect`) and do not
dilute the noisy family. A noiseless metric may declare a `tolerance` (relative): work
counted by an instrument (efflab.runtime.instrument) repeats to ~1e-5, not to the
instruction, so a change within 0.1 % is its own jitter, not a change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# verdicts, in the order a summary lists them
REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED = "unchanged"
UNDERPOWERED = "underpowered"
NO_BASELINE = "no-baseline"
VERDICTS = (REGRESSION, IMPROVEMENT, UNCHANGED, UNDERPOWERED, NO_BASELINE)

PERMUTATIONS = 9999  # exact when fewer distinct splits exist; seeded otherwise


@dataclass(frozen=True)
class Policy:
    """How a metric is judged. Defaults suit a noisy 2-core box (see module docstring)."""

    alpha: float = 0.05  # family-wise false-alarm probability per night
    min_effect: float = 0.10  # relative change of the median that matters (0.10 = 10%)
    baseline_runs: int = 5  # how many past nights are pooled into the baseline
    ignore: bool = False  # reported in the trend, never judged (e.g. estimated energy)
    noiseless: bool = False  # compared exactly: any change of the median is reported
    tolerance: float = 0.0  # noiseless: a relative change up to this is "unchanged"

    def merged(self, override: dict | None) -> Policy:
        """This policy with the fields given in `override` (a suite policy block)."""
        if not override:
            return self
        known = {k: v for k, v in override.items() if k in self.__dataclass_fields__}
        return Policy(**{**self.__dict__, **known})


@dataclass
class Shift:
    """Tonight vs baseline for one (point, metric); the raw evidence before correction."""

    n_baseline: int
    n_current: int
    baseline_median: float = math.nan
    current_median: float = math.nan
    change: float = math.nan  # signed relative change of the median (+0.2 = 20% higher)
    worse_by: float = math.nan  # change in the worse direction (+ = worse, - = better)
    p_worse: float = 1.0  # one-sided p: tonight worse than baseline
    p_better: float = 1.0  # one-sided p: tonight better than baseline
    min_p: float = 1.0  # smallest one-sided p these sample sizes can give (no ties)
    method: str = "none"  # mann-whitney-exact|-asymptotic|-permutation | deterministic | exact


EXACT_METHODS = ("deterministic", "exact")  # compared exactly, outside the noisy family


@dataclass
class Decision:
    """A shift after the multiple-comparison correction and the policy."""

    shift: Shift
    policy: Policy
    verdict: str = UNCHANGED
    p_worse_adj: float = 1.0
    p_better_adj: float = 1.0
    detectable: bool = True  # can these sample sizes reach the corrected level at all?
    notes: list[str] = field(default_factory=list)


def min_p_value(n: int, m: int) -> float:
    """Smallest one-sided exact Mann-Whitney p-value for samples of size n and m."""
    if n == 0 or m == 0:
        return 1.0
    return 1.0 / math.comb(n + m, m)


def relative_change(base: float, cur: float) -> float:
    """(cur - base) / |base|; +-inf when a zero baseline moved, 0 when nothing moved."""
    if base == 0:
        return 0.0 if cur == 0 else math.copysign(math.inf, cur)
    return (cur - base) / abs(base)


def shift(
    baseline: Sequence[float], current: Sequence[float], better: str, noiseless: bool = False
) -> Shift:
    """Medians, direction-aware relative change and one-sided U-test p-values.

    `noiseless` (declared by the script or the suite) compares the medians exactly even
    when the values spread; without it, zero spread on both sides is detected here.
    """
    from scipy import stats

    b = np.asarray(baseline, dtype=float)
    c = np.asarray(current, dtype=float)
    b, c = b[np.isfinite(b)], c[np.isfinite(c)]
    s = Shift(n_baseline=len(b), n_current=len(c))
    if len(b) == 0 or len(c) == 0:
        return s
    s.baseline_median = float(np.median(b))
    s.current_median = float(np.median(c))
    s.change = relative_change(s.baseline_median, s.current_median)
    s.worse_by = s.change if better == "lower" else -s.change
    s.min_p = min_p_value(len(b), len(c))
    if noiseless or (np.ptp(b) == 0 and np.ptp(c) == 0):
        # no noise at all: the two values either match or they don't
        s.method = "exact" if noiseless else "deterministic"
        s.min_p = 0.0
        s.p_worse = 0.0 if s.worse_by > 0 else 1.0
        s.p_better = 0.0 if s.worse_by < 0 else 1.0
        return s
    # "greater" tests current > baseline; for better=higher, worse means smaller
    worse_alt, better_alt = ("greater", "less") if better == "lower" else ("less", "greater")
    ties = len(np.unique(np.concatenate([b, c]))) < len(b) + len(c)
    if ties:  # the exact U distribution assumes no ties; permute the real values instead
        method = stats.PermutationMethod(n_resamples=PERMUTATIONS, rng=0)
        s.method = "mann-whitney-permutation"
    else:
        method = "exact" if min(len(b), len(c)) <= 8 or len(b) + len(c) <= 40 else "asymptotic"
        s.method = f"mann-whitney-{method}"
    s.p_worse = float(stats.mannwhitneyu(c, b, alternative=worse_alt, method=method).pvalue)
    s.p_better = float(stats.mannwhitneyu(c, b, alternative=better_alt, method=method).pvalue)
    return s


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (controls the family-wise error rate)."""
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adj = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adj[i] = running
    return adj


def decide(
    shifts: Sequence[Shift], policies: Sequence[Policy], correction: str = "holm"
) -> list[Decision]:
    """Verdicts for one night's comparisons, corrected together (`holm` or `none`)."""
    out = [Decision(shift=s, policy=p) for s, p in zip(shifts, policies, strict=True)]
    noisy = [
        d
        for d in out
        if not d.policy.ignore and d.shift.n_baseline and d.shift.method not in EXACT_METHODS
    ]
    if correction == "holm":
        worse = holm([d.shift.p_worse for d in noisy])
        better = holm([d.shift.p_better for d in noisy])
    else:
        worse = [d.shift.p_worse for d in noisy]
        better = [d.shift.p_better for d in noisy]
    family = max(len(noisy), 1) if correction == "holm" else 1
    for d, pw, pb in zip(noisy, worse, better, strict=True):
        d.p_worse_adj, d.p_better_adj = pw, pb
    for d in out:
        s, pol = d.shift, d.policy
        if s.n_baseline == 0 or s.n_current == 0:
            d.verdict = NO_BASELINE
            continue
        if s.method in EXACT_METHODS:
            d.p_worse_adj, d.p_better_adj = s.p_worse, s.p_better
        # the first Holm step compares the smallest p with alpha / family
        d.detectable = s.min_p * family <= pol.alpha
        if pol.ignore:
            d.verdict = UNCHANGED
            d.notes.append("ignored by policy")
            continue
        if s.method in EXACT_METHODS:  # exact: any change is real, min_effect is for noise
            d.verdict = (
                REGRESSION if s.worse_by > 0 else IMPROVEMENT if s.worse_by < 0 else UNCHANGED
            )
            if abs(s.worse_by) <= pol.tolerance:  # a count's own jitter (hashing, clocks)
                d.verdict = UNCHANGED
            if d.verdict != UNCHANGED:
                d.notes.append(
                    f"compared exactly ({s.method}): {s.baseline_median:.6g} -> "
                    f"{s.current_median:.6g}"
                )
            continue
        if d.p_worse_adj < pol.alpha and s.worse_by >= pol.min_effect:
            d.verdict = REGRESSION
        elif d.p_better_adj < pol.alpha and -s.worse_by >= pol.min_effect:
            d.verdict = IMPROVEMENT
        elif not d.detectable and abs(s.worse_by) >= pol.min_effect:
            # moved enough to matter, but these sample sizes can never be significant
            d.verdict = UNDERPOWERED
            d.notes.append(
                f"smallest reachable p {s.min_p:.2g} x {family} comparisons > alpha {pol.alpha}"
            )
        else:
            d.verdict = UNCHANGED
    return out
