"""Change points over each metric's whole nightly history (Apache Otava, E-divisive means).

The night-vs-baseline test (`efflab.nightly.regression`) sees one night against the
last few; a creep of 2-3 % a night never crosses its `min_effect`, and a step can be
absorbed once it is old. Here every (point, metric) series of nightly medians is split
by Otava's `compute_change_points` (the Hunter variant of E-divisive means used on
MongoDB's and DataStax's performance CI: sliding-window E-divisive split, then a
t-test merge that keeps change points with p < `max_pvalue`). Change points that leave
a segment shorter than `min_segment` nights are dropped (a one-night spike is not a
persistent shift), and the survivors' p-values recomputed with Otava's t-test.

A change point must also be persistent: at least `min_segment` nights on each side lie
on their side of the midpoint between the two levels (a spike moves a mean, not a run
of nights). It is *open* when it moved the metric in its worse direction, the current
level (the last segment, and each of the last `min_segment` nights) is still worse
than the level before it by at least `min_effect`, and nobody accepted it (`efflab nightly accept`); an open change point
fails the night. Its position is the first night at the new level; the commit range
is (last commit at the old level, first commit at the new level].

`otava` is installed without its dependencies (see pyproject's [tool.efflab]); only
`otava.analysis`, which needs numpy and scipy, is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from efflab.core.specio import canonical_json
from efflab.nightly import history as hist
from efflab.nightly.regression import Policy

REGRESSION = "regression"
IMPROVEMENT = "improvement"


@dataclass(frozen=True)
class Settings:
    """The suite's `change_points:` block."""

    enabled: bool = True
    max_pvalue: float = 0.001  # Otava's significance level for a change point
    min_magnitude: float = 0.0  # Otava's merge: keep weaker points above this rel. change
    window: int = 30  # Otava's sliding window (nights)
    min_nights: int = 6  # shorter series are not analysed
    min_segment: int = 2  # nights on each side of a change point (spikes are not shifts)

    @classmethod
    def from_json(cls, raw: dict | None) -> Settings:
        raw = raw or {}
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


@dataclass
class Split:
    """One change point of a series: the index of the first value at the new level."""

    index: int
    p_value: float
    mean_before: float
    mean_after: float


def _stats(series: np.ndarray, lo: int, cut: int, hi: int) -> Split:
    from otava.analysis import TTestSignificanceTester

    st = TTestSignificanceTester(1.0).compare(series[lo:cut], series[cut:hi])
    p = float(st.pvalue) if st.pvalue == st.pvalue else 1.0
    return Split(cut, p, float(st.mean_1), float(st.mean_2))


def splits(values: Sequence[float], cfg: Settings) -> list[Split]:
    """Persistent change points of one series (chronological), with their statistics."""
    from otava.analysis import compute_change_points

    series = np.asarray(values, dtype=float)
    if len(series) < cfg.min_nights or not np.all(np.isfinite(series)) or np.ptp(series) == 0:
        return []
    # a list, not an array: otava 0.8.0's detector slices a window only from a list
    # (an ndarray is analysed whole and then offset by the window start)
    found, _ = compute_change_points(
        [float(x) for x in series],
        window_len=cfg.window,
        max_pvalue=cfg.max_pvalue,
        min_magnitude=cfg.min_magnitude,
    )
    cuts = sorted({int(c.index) for c in found if 0 < c.index < len(series)})
    while cuts:
        bounds = [0, *cuts, len(series)]
        seg = [bounds[i + 1] - bounds[i] for i in range(len(bounds) - 1)]
        # drop the cut next to the shortest too-short segment; recompute; repeat
        short = [i for i, n in enumerate(seg) if n < cfg.min_segment]
        if short:
            i = min(short, key=lambda j: seg[j])
            if i == 0:
                drop = 0
            elif i == len(seg) - 1:
                drop = len(cuts) - 1
            else:  # merge into the shorter neighbour
                drop = i - 1 if seg[i - 1] <= seg[i + 1] else i
            del cuts[drop]
            continue
        out = [_stats(series, bounds[i], bounds[i + 1], bounds[i + 2]) for i in range(len(cuts))]
        weak = [
            j
            for j, s in enumerate(out)
            if s.p_value >= cfg.max_pvalue
            or not _persistent(
                series[bounds[j] : bounds[j + 1]], series[bounds[j + 1] : bounds[j + 2]], s, cfg
            )
        ]
        if not weak:
            return out
        del cuts[max(weak, key=lambda j: out[j].p_value)]
    return []


def _persistent(left: np.ndarray, right: np.ndarray, s: Split, cfg: Settings) -> bool:
    """At least `min_segment` nights on each side lie on their side of the midpoint
    between the two levels: a spike moves a segment's mean, not its nights."""
    mid = (s.mean_before + s.mean_after) / 2
    up = s.mean_after > s.mean_before
    after = np.sum(right > mid) if up else np.sum(right < mid)
    before = np.sum(left < mid) if up else np.sum(left > mid)
    return bool(after >= cfg.min_segment and before >= cfg.min_segment)


@dataclass
class ChangePoint:
    """A persistent shift of one (experiment, point, metric), as reported."""

    experiment: str
    point: dict
    group: str
    metric: str
    unit: str
    better: str
    night: int  # the first night at the new level
    previous_night: int  # the last night at the old level
    commit_before: str | None
    commit_at: str | None
    mean_before: float
    mean_after: float
    change: float  # relative change of the mean at this point (+0.2 = 20 % higher)
    current_vs_before: float  # the latest level against the level before, worse-positive
    p_value: float
    direction: str  # regression | improvement
    open: bool = False  # worse, still worse by >= min_effect, not accepted: fails the night
    accepted: bool = False

    @property
    def commits(self) -> str:
        a, b = (self.commit_before or "?")[:10], (self.commit_at or "?")[:10]
        return f"{a}..{b}"


def rel(before: float, after: float) -> float:
    if before == 0:
        return 0.0 if after == 0 else math.copysign(math.inf, after)
    return (after - before) / abs(before)


def analyse(
    nights: Sequence[int],
    commits: Sequence[str | None],
    values: Sequence[float],
    better: str,
    min_effect: float,
    cfg: Settings,
) -> list[dict]:
    """Change points of one series of nightly medians, as plain fields for ChangePoint."""
    found = splits(values, cfg)
    if not found:
        return []
    sign = 1.0 if better == "lower" else -1.0
    bounds = [0, *[s.index for s in found], len(values)]
    values = np.asarray(values, dtype=float)
    last = float(np.mean(values[bounds[-2] :]))
    recent = values[-cfg.min_segment :]  # each of the last nights must be at the new level
    out = []
    for s in found:
        change = rel(s.mean_before, s.mean_after)
        worse = sign * change > 0
        now_worse = sign * rel(s.mean_before, last)
        recent_worse = min(sign * rel(s.mean_before, float(v)) for v in recent)
        out.append(
            {
                "night": nights[s.index],
                "previous_night": nights[s.index - 1],
                "commit_before": commits[s.index - 1],
                "commit_at": commits[s.index],
                "mean_before": s.mean_before,
                "mean_after": s.mean_after,
                "change": change,
                "current_vs_before": now_worse,
                "p_value": s.p_value,
                "direction": REGRESSION if worse else IMPROVEMENT,
                "open": bool(worse and min(now_worse, recent_worse) >= max(min_effect, 1e-12)),
            }
        )
    return out


def for_experiment(
    repo: Path,
    history: list[dict[str, Any]],
    experiment: str,
    tonight: tuple[int, str | None, list[dict[str, Any]]],
    metrics: list[str],
    policy_for: Callable[[str], Policy],
    neutral: Sequence[str],
    cfg: Settings,
) -> list[ChangePoint]:
    """Change points of every (point, metric) of tonight over the experiment's whole history.

    `tonight` is (night number, commit, tonight's records); past nights come from the
    history (their run records). Regression-flagged nights are kept: the series is what
    was measured, whatever the verdicts were.
    """
    if not cfg.enabled:
        return []
    neutral = tuple(neutral)
    night_no, commit, current = tonight
    now = hist.samples(current, neutral)
    meta: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in current:
        for m, v in rec["metrics"].items():
            meta.setdefault((hist.group_of(rec, neutral), m), {**v, "point": rec["point"]})
    wanted = {(g, m) for g, m in now if m in metrics}
    series: dict[tuple[str, str], list[tuple[int, str | None, float]]] = {p: [] for p in wanted}
    past = [e for e in history if e["night"] < night_no]
    nights = hist.load_nights(repo, experiment, past) if wanted else {}
    for entry in past:
        exp = entry.get("experiments", {}).get(experiment)
        if not exp or not exp.get("keys"):
            continue
        recs = nights.get(entry["night"], [])
        c = (entry.get("git") or {}).get("commit")
        for pair, vals in hist.samples(recs, neutral).items():
            if pair in series and vals:
                series[pair].append((entry["night"], c, float(np.median(vals))))
    for pair in wanted:
        series[pair].append((night_no, commit, float(np.median(now[pair]))))
    accepts = hist.acceptances(history)
    out = []
    for (g, m), pts in sorted(series.items(), key=lambda kv: canonical_json(meta[kv[0]])):
        pol = policy_for(m)
        if pol.ignore or pol.noiseless:  # noiseless metrics are compared exactly instead
            continue
        info = meta[(g, m)]
        nights, commits, values = zip(*pts, strict=True) if pts else ((), (), ())
        for fields in analyse(nights, commits, values, info["better"], pol.min_effect, cfg):
            cp = ChangePoint(
                experiment=experiment,
                point=info["point"],
                group=g,
                metric=m,
                unit=info["unit"],
                better=info["better"],
                **fields,
            )
            cp.accepted = any(
                (experiment, g, m) in a.covers and cp.night <= a.through for a in accepts
            )
            cp.open = cp.open and not cp.accepted
            out.append(cp)
    return out
