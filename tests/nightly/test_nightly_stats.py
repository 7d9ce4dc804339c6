"""Regression detection on synthetic nightly histories built from real run-record dicts.

Each test writes schema-valid run records and a history.jsonl into a scratch project,
then goes through the same code path as `efflab nightly` (baseline lookup from the
history, U tests, Holm correction, policy). Noise is seeded, so every number here is
reproducible; the rates are measured, not assumed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from efflab.core.specio import atomic_write_json, validate
from efflab.nightly import findings, history
from efflab.nightly import night as nightly
from efflab.nightly import regression as regress
from efflab.nightly.regression import Policy

EXP = "synth"
PROV = {
    "git": {"commit": None, "dirty": None},
    "host": {"cpu_model": "test", "cores": 2, "memory_gb": 1.0, "os": "linux"},
    "python": "3.11",
    "packages": {},
    "runtime": "host",
    "energy_method": "estimated:none",
}


def record(night: int, point: dict, rep: int, metrics: dict[str, tuple[float, str]]) -> dict:
    """A run record as efflab.results.records writes it (validated against the shipped schema)."""
    key = hashlib.sha256(f"{night}-{json.dumps(point)}-{rep}".encode()).hexdigest()[:20]
    rec = {
        "schema_version": 1,
        "run_id": f"night-{night}",
        "experiment": EXP,
        "key": key,
        "alias": "synth-bench",
        "point": point,
        "repetition": rep,
        "status": "ok",
        "metrics": {
            m: {"value": float(v), "unit": "ms" if b == "lower" else "1/s", "better": b}
            for m, (v, b) in metrics.items()
        },
        "inputs": {**point, "runs": 100},
        "values": {},
        "started": None,
        "ended": None,
        "duration_s": 0.1,
        "provenance": PROV,
    }
    validate(rec, "run-record", None)
    return rec


class History:
    """A scratch project with nights of records; `tonight` judges like `efflab nightly`."""

    def __init__(self, root: Path, points: int = 1, reps: int = 3, seed: int = 0, cv: float = 0.05):
        self.root, self.points, self.reps, self.cv = root, points, reps, cv
        self.rng = np.random.default_rng(seed)
        self.history: list[dict[str, Any]] = []

    def night_records(self, factors: dict[str, float] | None = None) -> list[dict]:
        """One night: `latency` (lower is better) and `throughput` (higher is better)."""
        f = {"latency": 1.0, "throughput": 1.0, **(factors or {})}
        n = len(self.history) + 1
        recs = []
        for p in range(self.points):
            for r in range(self.reps):
                noise = np.exp(self.rng.normal(0, self.cv, 2))
                recs.append(
                    record(
                        n,
                        {"size": p},
                        r,
                        {
                            "latency": (10.0 * (p + 1) * noise[0] * f["latency"], "lower"),
                            "throughput": (100.0 / (p + 1) * noise[1] * f["throughput"], "higher"),
                            "model_kb": (42.0, "lower"),  # deterministic
                        },
                    )
                )
        return recs

    def add(self, recs: list[dict]) -> None:
        for rec in recs:
            atomic_write_json(self.root / "results" / EXP / "runs" / f"{rec['key']}.json", rec)
        self.history.append(
            {
                "night": len(self.history) + 1,
                "experiments": {EXP: {"keys": [r["key"] for r in recs]}},
            }
        )

    def tonight(self, recs: list[dict], policy: Policy | None = None) -> findings.Night:
        policy = policy or Policy()
        night = findings.Night(
            night=len(self.history) + 1,
            run_id="tonight",
            started="",
            suite="",
            correction="holm",
            git={},
        )
        night.experiments[EXP] = findings.ExperimentOutcome(version=1)
        past = history.baselines(self.root, self.history, EXP, recs, lambda m: policy.baseline_runs)
        metrics = ["latency", "throughput", "model_kb"]
        shifts, pols, ctx = nightly.assess(recs, past, metrics, lambda m: policy)
        nightly.judge(night, [(EXP, shifts, pols, ctx)])
        return night


def verdicts(night: findings.Night, metric: str) -> list[str]:
    return [f.verdict for f in night.findings if f.metric == metric]


def make(tmp_path: Path, nights: int = 5, **kw) -> History:
    h = History(tmp_path, **kw)
    for _ in range(nights):
        h.add(h.night_records())
    return h


def test_injected_20_percent_slowdown_is_flagged(tmp_path: Path) -> None:
    caught = 0
    for seed in range(10):
        h = make(tmp_path / str(seed), seed=seed)
        night = h.tonight(h.night_records({"latency": 1.2}))
        caught += verdicts(night, "latency") == [regress.REGRESSION]
        assert night.exit_code == (1 if night.regressions else 0)
        assert verdicts(night, "throughput") != [regress.REGRESSION]
    # 5 nights x 3 reps vs 3, noise cv 5%: the U test is at its floor p = 1/816
    assert caught >= 9, f"20% slowdown caught in {caught}/10 seeds"


def test_improvement_is_reported_and_does_not_fail(tmp_path: Path) -> None:
    h = make(tmp_path)
    night = h.tonight(h.night_records({"latency": 0.8}))
    assert verdicts(night, "latency") == [regress.IMPROVEMENT]
    f = next(f for f in night.findings if f.metric == "latency")
    assert f.change == pytest.approx(-0.2, abs=0.06) and f.baseline_nights == 5
    assert night.exit_code == 0


def test_higher_is_better_metric_is_judged_in_its_direction(tmp_path: Path) -> None:
    h = make(tmp_path)
    drop = h.tonight(h.night_records({"throughput": 0.8}))
    assert verdicts(drop, "throughput") == [regress.REGRESSION]
    rise = h.tonight(h.night_records({"throughput": 1.25}))
    assert verdicts(rise, "throughput") == [regress.IMPROVEMENT]
    assert rise.exit_code == 0 and drop.exit_code == 1


def test_pure_noise_false_alarm_rate_is_at_most_alpha(tmp_path: Path) -> None:
    """Nights of noise only: how often does a night report any regression?"""
    alpha = 0.05
    rates = {}
    for min_effect in (0.0, Policy().min_effect):
        pol = Policy(alpha=alpha, min_effect=min_effect)
        alarms = nights = 0
        for seed in range(4):  # several seeds, each a long run of nights
            h = make(tmp_path / f"{min_effect}-{seed}", points=2, seed=seed)
            for _ in range(25):
                recs = h.night_records()
                night = h.tonight(recs, pol)
                alarms += bool(night.regressions)
                nights += 1
                h.add(recs)  # the rolling baseline moves on, as in production
        rates[min_effect] = alarms / nights
    # family: 2 points x 2 noisy metrics per night, Holm-corrected at alpha
    assert rates[0.0] <= alpha, rates
    assert rates[Policy().min_effect] <= rates[0.0], rates


def test_per_comparison_level_without_correction(tmp_path: Path) -> None:
    """The bare one-sided U test holds its level on same-distribution samples."""
    rng = np.random.default_rng(7)
    alpha, n = 0.05, 300
    hits = sum(
        regress.shift(rng.lognormal(0, 0.05, 15), rng.lognormal(0, 0.05, 3), "lower").p_worse
        < alpha
        for _ in range(n)
    )
    assert hits / n <= alpha


def test_deterministic_metric_change_is_exact(tmp_path: Path) -> None:
    s = regress.shift([42.0] * 15, [50.0] * 3, "lower")
    assert s.method == "deterministic" and s.p_worse == 0.0
    d = regress.decide([s, regress.shift([42.0] * 15, [42.0] * 3, "lower")], [Policy()] * 2)
    assert [x.verdict for x in d] == [regress.REGRESSION, regress.UNCHANGED]


def test_small_baseline_is_underpowered_not_silently_unchanged(tmp_path: Path) -> None:
    h = make(tmp_path, nights=1)  # 3 vs 3: the smallest one-sided p is 1/20 = 0.05
    night = h.tonight(h.night_records({"latency": 1.5}))
    f = next(f for f in night.findings if f.metric == "latency")
    assert f.verdict == regress.UNDERPOWERED and not f.detectable
    assert night.exit_code == 0


def test_first_night_has_no_baseline(tmp_path: Path) -> None:
    h = History(tmp_path)
    night = h.tonight(h.night_records())
    assert set(verdicts(night, "latency")) == {regress.NO_BASELINE} and night.exit_code == 0


def test_baseline_pools_only_the_last_k_nights_of_the_same_workload(tmp_path: Path) -> None:
    h = make(tmp_path, nights=7)
    other = h.night_records()
    for rec in other:  # same point params, different workload: must not be pooled
        rec["inputs"]["runs"] = 5
    h.add(other)
    night = h.tonight(h.night_records(), Policy(baseline_runs=4))
    f = next(f for f in night.findings if f.metric == "latency")
    assert f.baseline_nights == 4 and f.n_baseline == 12


def test_holm_matches_hand_computation() -> None:
    assert regress.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert regress.min_p_value(15, 3) == pytest.approx(1 / 816)
