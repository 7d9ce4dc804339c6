"""Confidence intervals of claim statistics: a bootstrap over repetitions.

Why a bootstrap: a claim's statistic is a ratio or difference of medians (sometimes
aggregated over points), whose sampling distribution has no closed form with 3-5
repetitions of noisy, skewed timings. Each planned point's repetitions are one
independent sample; `scipy.stats.bootstrap` (percentile method, 95%, seeded, all
statistics of a claim from the same resamples) resamples every point's repetitions
and recomputes the statistic. Percentile rather than BCa: BCa needs a jackknife,
which degenerates on tied or 3-value samples. With 3 repetitions the percentile
interval of a median is the range of the repetitions, so "the whole interval
satisfies the condition" means every repetition agrees — conservative by design.

A point with one repetition contributes its value as a constant (nothing to resample);
that is exact for a deterministic metric (model size, MACs, LUTs, a seeded simulator)
and is marked, so a timing claim with fewer than 3 repetitions is `inconclusive`
(efflab.papers.evaluate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from efflab.papers.claims import Arith, Const, Expr, Scalar, Select, fmt, render
from efflab.papers.samples import Samples, planned, point_sample

# one interval method everywhere: tables and the site use the same (efflab.results.intervals)
from efflab.results.intervals import CONFIDENCE, N_RESAMPLES, SEED

METHOD = "bootstrap-percentile-95"

_STAT = {
    "median": np.median,
    "mean": np.mean,
    "min": np.min,
    "max": np.max,
    "std": lambda x, axis: np.std(x, axis=axis, ddof=1) if x.shape[axis] > 1 else 0.0 * x.sum(axis),
}
_AGG = {"median": np.median, "mean": np.mean, "min": np.min, "max": np.max, "sum": np.sum}


class EvalError(Exception):
    """The data cannot decide the claim (no rows, a point without a record, NaN, 1/0)."""


@dataclass(frozen=True)
class Estimate:
    """A statistic's value on the data and its confidence interval over repetitions."""

    value: float
    low: float
    high: float
    n_min: int  # fewest repetitions of any point it reads (0: constants only)
    timing: bool  # reads a timing-sensitive experiment
    unit: str | None = None
    contended: int = 0  # timing repetitions it reads that were measured contended
    # paired and the same in every resample although its points' repetitions vary:
    # the value follows from the condition's form (an arm against itself), not from
    # how well the machine measured, so contention cannot make it uncertain
    exact: bool = False

    @property
    def degenerate(self) -> bool:
        return self.low == self.high


@dataclass
class _Leaf:
    values: np.ndarray
    stat: str
    contended: int = 0  # of a timing-sensitive experiment only
    label: str = ""  # experiment, metric, point: one sample bound twice is counted once


class Resolver:
    """Binds the selections of some expressions to point samples, then bootstraps them."""

    def __init__(self, samples: Mapping[str, Samples], paired: bool = False):
        self.samples = samples
        self.leaves: list[_Leaf] = []
        self.timing = False
        # paired: a point read twice is one leaf, resampled once (placebos compare an
        # arm with itself: the difference is then exactly 0 in every resample)
        self.paired = paired
        self._bound: dict[tuple[str, str], int] = {}

    def _select(self, sel: Select, extra: tuple[tuple[str, Scalar], ...]) -> list[int]:
        s = self.samples.get(sel.experiment)
        if s is None or s.reps.empty:
            raise EvalError(f"experiment '{sel.experiment}' produced no successful records")
        if sel.stat not in _STAT:
            raise EvalError(f"stat '{sel.stat}' has no bootstrap form; use median/mean/min/max")
        pts = planned(s, sel, extra)
        if not pts:
            raise EvalError(f"{render(sel)} covers no planned point of {sel.experiment}")
        if len(pts) > 1 and sel.agg is None:
            raise EvalError(
                f"{render(sel)} covers {len(pts)} points; fix more parameters or set agg"
            )
        out = []
        for pt in pts:
            ps = point_sample(s, sel.metric, pt)
            if ps.values.size == 0:
                raise EvalError(
                    f"{render(sel)}: point {ps.label} has no successful record of {sel.metric}"
                    + (f" (one of {len(pts)} under agg {sel.agg})" if sel.agg else "")
                )
            timing = s.timing_metric(sel.metric)
            self.timing |= timing
            label = f"{sel.experiment}/{sel.metric}/{ps.label}"
            if self.paired and (label, sel.stat) in self._bound:
                out.append(self._bound[(label, sel.stat)])
                continue
            self.leaves.append(_Leaf(ps.values, sel.stat, ps.contended if timing else 0, label))
            out.append(len(self.leaves) - 1)
            self._bound[(label, sel.stat)] = out[-1]
        return out

    def bind(self, e: Expr, extra: tuple[tuple[str, Scalar], ...] = ()) -> Bound:
        if isinstance(e, Const):
            return Bound("const", value=e.value)
        if isinstance(e, Select):
            return Bound("select", leaves=self._select(e, extra), agg=e.agg or "median")
        return Bound(e.op, parts=(self.bind(e.left, extra), self.bind(e.right, extra)))

    @staticmethod
    def minus(a: Bound, b: Bound) -> Bound:
        """The bound difference a - b of two bound statistics."""
        return Bound("difference", parts=(a, b))

    def unit(self, e: Expr) -> str | None:
        if isinstance(e, Const):
            return None
        if isinstance(e, Arith):
            return "x" if e.op == "ratio" else (self.unit(e.left) or self.unit(e.right))
        s = self.samples.get(e.experiment)
        rows = s.reps[s.reps["metric"] == e.metric] if s is not None else None
        return None if rows is None or rows.empty else str(rows["unit"].iloc[0])

    def estimate(self, bound: Sequence[Bound], units: Sequence[str | None] = ()) -> list[Estimate]:
        """Point values and intervals of several bound statistics, one set of resamples."""
        used = sorted({i for b in bound for i in b.leaf_ids()})
        varying = [i for i in used if self.leaves[i].values.size > 1]
        n_min = min((self.leaves[i].values.size for i in used), default=0)
        contended = sum({self.leaves[i].label: self.leaves[i].contended for i in used}.values())

        def reduce_all(arrays: Sequence[np.ndarray], axis: int = -1) -> dict[int, np.ndarray]:
            red: dict[int, np.ndarray] = {}
            for i in used:
                leaf = self.leaves[i]
                if i in varying:
                    red[i] = np.asarray(_STAT[leaf.stat](arrays[varying.index(i)], axis=axis))
                else:  # one repetition: its value; a spread of one value is undefined
                    red[i] = np.asarray(np.nan if leaf.stat == "std" else float(leaf.values[0]))
            return red

        with np.errstate(divide="ignore", invalid="ignore"):
            point = reduce_all([self.leaves[i].values for i in varying])
            values = [float(b.compute(point)) for b in bound]
        for v in values:
            if not np.isfinite(v):
                raise EvalError(f"statistic is {v} on the data (division by zero or NaN)")
        if not varying:
            lows, highs = values, values
        else:

            def statistic(*arrays: np.ndarray, axis: int = -1) -> np.ndarray:
                with np.errstate(divide="ignore", invalid="ignore"):
                    red = reduce_all(arrays, axis)
                    return np.stack(
                        [np.broadcast_to(b.compute(red), arrays[0].shape[:-1]) for b in bound]
                    )

            data = tuple(self.leaves[i].values for i in varying)
            res = stats.bootstrap(
                data,
                statistic,
                vectorized=True,
                paired=False,
                confidence_level=CONFIDENCE,
                n_resamples=N_RESAMPLES,
                method="percentile",
                random_state=np.random.default_rng(SEED),
            )
            lows = [float(x) for x in np.atleast_1d(res.confidence_interval.low)]
            highs = [float(x) for x in np.atleast_1d(res.confidence_interval.high)]
        units = list(units) or [None] * len(bound)
        resampled = bool(varying) and len(varying) == len(used)
        return [
            Estimate(
                v,
                min(lo, v),
                max(hi, v),
                n_min,
                self.timing,
                u,
                contended,
                self.paired and resampled and lo == hi == v,
            )
            for v, lo, hi, u in zip(values, lows, highs, units, strict=True)
        ]


@dataclass
class Bound:
    """An expression with its selections bound to leaf indices."""

    kind: str  # const | select | ratio | difference
    value: float = 0.0
    leaves: list[int] | None = None
    agg: str = "median"
    parts: tuple[Bound, Bound] | None = None

    def leaf_ids(self) -> list[int]:
        if self.kind == "select":
            return list(self.leaves or [])
        if self.parts:
            return [i for p in self.parts for i in p.leaf_ids()]
        return []

    def compute(self, red: dict[int, np.ndarray]) -> np.ndarray:
        if self.kind == "const":
            return np.asarray(self.value)
        if self.kind == "select":
            vals = [red[i] for i in self.leaves or []]
            if len(vals) == 1:
                return vals[0]
            return _AGG[self.agg](np.stack(np.broadcast_arrays(*vals)), axis=0)
        assert self.parts is not None
        a, b = (p.compute(red) for p in self.parts)
        return a / b if self.kind == "ratio" else a - b


def fmt_interval(est: Estimate, unit: str | None = None) -> str:
    """`3.21 x [2.95, 3.6]`; a degenerate interval prints as the bare value."""
    if est.degenerate:
        return fmt(est.value, unit or est.unit)
    return f"{fmt(est.value, unit or est.unit)} [{est.low:.4g}, {est.high:.4g}]"
