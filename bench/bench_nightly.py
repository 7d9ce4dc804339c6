"""How well the nightly finds regressions: synthetic series with known truth (printed figures).

Run: PYTHONPATH=src .venv/bin/python bench/bench_nightly.py [--series 40] [--json FILE]

Each series is one (point, metric), lower is better, `REPS` repetitions a night with
lognormal noise of the given coefficient of variation, `WARMUP` quiet nights, then:
- step +5/10/20 % from night W+1 on, at 2/5/10 % noise;
- creep +1/2/3 % a night for 10 nights (W+1 .. W+10), at 2/5/10 % noise;
- a one-night spike of +20/50 % at night W+1 (must not be called persistent);
- noise only.
Every night from W+1 on (and, for noise only, from night 11 on) is judged as
`efflab nightly` judges it:
- night vs baseline: `regression.shift` + `regression.decide` (one-sided U test; the
  night's family of comparisons is represented by alpha / FAMILY, Holm's first step for
  a suite of FAMILY comparisons), min_effect 0.10, baseline = the last 5 nights not
  flagged as a regression (as `history.baselines` does; in memory here);
- cp: `changepoints.analyse` (Apache Otava E-divisive + t-test merge, p < 0.001,
  persistence over min_segment 2 nights) over the whole series of nightly medians; a
  night "flags" when a change point in the worse direction is reported (any size);
- cp-fail: ... when an open change point (worse, still worse by min_effect) fails it;
- both: a night fails when the night test or cp-fail does (what `efflab nightly` does).
Reported per scenario and detector: detection rate (flagged within the 10 nights after
the change; for spikes: the spike night flagged), median nights to detect (1 = the
night it happened), false alarms per 1,000 nights (noise only: any flag; spikes:
persistent calls = change points or failing nights after the spike night), and the median |position error| of the first open change point (nights).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from efflab.nightly import changepoints as cpm  # noqa: E402
from efflab.nightly import regression as regress  # noqa: E402

REPS = 5  # the suite's repetitions
WARMUP = 20  # quiet nights before the change
AFTER = 10  # nights judged after the change
FAMILY = 50  # comparisons per night in a suite (edge-digits: 6 points x ~8 metrics)
POLICY = regress.Policy(alpha=0.05 / FAMILY, min_effect=0.10, baseline_runs=5)
CFG = cpm.Settings()
DETECTORS = ("night", "cp", "cp-fail", "both")


def factors(kind: str, size: float, nights: int) -> np.ndarray:
    f = np.ones(nights)
    start = WARMUP  # index of night W+1
    if kind == "step":
        f[start:] = 1 + size
    elif kind == "creep":
        for i in range(start, nights):
            f[i] = (1 + size) ** min(i - start + 1, AFTER)
    elif kind == "spike":
        f[start] = 1 + size
    return f


def judge_series(data: np.ndarray, first: int) -> dict[str, list[tuple[int, int | None]]]:
    """Nights (0-based) from `first` on: per detector, the list of (night, cp index)."""
    flagged: list[bool] = []
    out: dict[str, list[tuple[int, int | None]]] = {k: [] for k in DETECTORS}
    medians = np.median(data, axis=1)
    nights = list(range(1, len(data) + 1))
    for t in range(len(data)):
        base_nights = [i for i in range(t - 1, -1, -1) if not flagged[i]][: POLICY.baseline_runs]
        base = [x for i in base_nights for x in data[i]]
        d = regress.decide([regress.shift(base, data[t], "lower")], [POLICY], correction="none")[0]
        flagged.append(d.verdict == regress.REGRESSION)
        if t < first:
            continue
        cps = cpm.analyse(
            nights[: t + 1], [None] * (t + 1), medians[: t + 1], "lower", POLICY.min_effect, CFG
        )
        worse = [c for c in cps if c["direction"] == cpm.REGRESSION]
        opened = [c for c in worse if c["open"]]
        cp_any = min(c["night"] for c in worse) - 1 if worse else None
        cp_open = min(c["night"] for c in opened) - 1 if opened else None
        if flagged[-1]:
            out["night"].append((t, None))
        if worse:
            out["cp"].append((t, cp_any))
        if opened:
            out["cp-fail"].append((t, cp_open))
        if flagged[-1] or opened:
            out["both"].append((t, cp_open))
    return out


def scenario(kind: str, size: float, cv: float, n_series: int, seed: int) -> dict[str, dict]:
    rng = np.random.default_rng(seed)
    nights = WARMUP + AFTER
    first = WARMUP if kind != "noise" else 10
    res: dict[str, dict] = {
        k: {"hits": 0, "delay": [], "alarms": 0, "nights": 0, "pos": []} for k in DETECTORS
    }
    f = factors(kind, size, nights)
    for _ in range(n_series):
        data = 10.0 * f[:, None] * np.exp(rng.normal(0, cv, (nights, REPS)))
        flags = judge_series(data, first)
        for k, items in flags.items():
            r = res[k]
            r["nights"] += nights - first
            if kind in ("noise", "spike"):
                if kind == "spike":  # the spike night itself is a real (one-night) regression
                    r["hits"] += any(t == WARMUP for t, _ in items)
                    # persistent calls: change points (or any flag) after the spike night
                    items = [(t, c) for t, c in items if t > WARMUP and k != "night"]
                r["alarms"] += len(items)
                continue
            if items:
                t, c = items[0]
                r["hits"] += 1
                r["delay"].append(t - WARMUP + 1)
                cps = [c for _, c in items if c is not None]
                if cps:
                    r["pos"].append(abs(cps[0] - WARMUP))
    out = {}
    for k, r in res.items():
        out[k] = {
            "detection_rate": r["hits"] / n_series if kind != "noise" else None,
            "nights_to_detect": statistics.median(r["delay"]) if r["delay"] else None,
            "false_alarms_per_1000_nights": 1000 * r["alarms"] / r["nights"]
            if kind in ("noise", "spike")
            else None,
            "position_error_nights": statistics.median(r["pos"]) if r["pos"] else None,
        }
    return out


def fmt(v, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:.0%}" if pct else (f"{v:.1f}" if isinstance(v, float) else str(v))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=40, help="series per scenario (default 40)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--only", default=None, help="only this kind: noise, step, creep, spike")
    args = ap.parse_args()
    scenarios = [("noise", 0.0, cv) for cv in (0.02, 0.05, 0.10)]
    scenarios += [("step", s, cv) for s in (0.05, 0.10, 0.20) for cv in (0.02, 0.05, 0.10)]
    scenarios += [("creep", s, cv) for s in (0.01, 0.02, 0.03) for cv in (0.02, 0.05, 0.10)]
    scenarios += [("spike", s, cv) for s in (0.20, 0.50) for cv in (0.02, 0.05)]
    print(
        f"{args.series} series per scenario, {REPS} repetitions a night, {WARMUP} quiet nights, "
        f"{AFTER} judged after the change; night test at alpha 0.05/{FAMILY}, min_effect "
        f"{POLICY.min_effect}; change points p < {CFG.max_pvalue}"
    )
    head = (
        f"{'scenario':<22}{'detector':<9}{'detected':>9}{'nights':>8}{'FA/1000':>9}{'pos.err':>9}"
    )
    print(head)
    print("-" * len(head))
    rows = []
    t0 = time.perf_counter()
    for i, (kind, size, cv) in enumerate(scenarios):
        if args.only not in (None, kind):
            continue
        res = scenario(kind, size, cv, args.series, seed=1000 + i)
        name = f"{kind} {size:.0%}/n" if kind == "creep" else f"{kind} {size:.0%}"
        name = f"{'noise only' if kind == 'noise' else name} @{cv:.0%}"
        for det, r in res.items():
            print(
                f"{name:<22}{det:<9}{fmt(r['detection_rate'], True):>9}"
                f"{fmt(r['nights_to_detect']):>8}{fmt(r['false_alarms_per_1000_nights']):>9}"
                f"{fmt(r['position_error_nights']):>9}"
            )
            rows.append({"kind": kind, "size": size, "cv": cv, "detector": det, **r})
    print(f"\n{time.perf_counter() - t0:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
