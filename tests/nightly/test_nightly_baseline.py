"""Baselines that do not absorb regressions, change points, exact comparison, resets.

Every night goes through the code path of `efflab nightly` (`night.evaluate`: baselines
from the history file, U tests, Holm, Otava change points; `night.judge`;
`night.history_entry` appended to results/nightly/history.jsonl), on schema-valid run
records with seeded noise; only Snakemake is left out (the e2e tests run it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_nightly_stats import EXP, record

from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_json
from efflab.nightly import dashboard, findings, history, suite
from efflab.nightly import night as nightly
from efflab.nightly import regression as regress
from efflab.nightly.regression import Policy

METRICS = ["latency", "throughput", "accuracy"]


class Lab:
    """A scratch project whose nights are judged and recorded like real ones."""

    def __init__(self, root: Path, seed: int = 0, cv: float = 0.03, reps: int = 3, **suite_kw):
        self.root, self.cv, self.reps = root, cv, reps
        self.rng = np.random.default_rng(seed)
        self.entry = suite.Entry(index=0, name=EXP, neutral_inputs=suite_kw.pop("neutral", []))
        self.suite = suite.Suite(
            file=root / "suite.yaml", name="s", description="", entries=[self.entry], **suite_kw
        )
        self.declared: dict = {}

    def night(self, latency: float = 1.0, accuracy: float = 0.9, inputs: dict | None = None):
        n = len(history.read_history(self.root)) + 1
        recs = []
        for r in range(self.reps):
            noise = np.exp(self.rng.normal(0, self.cv, 2))
            rec = record(
                n,
                {"size": 0},
                r,
                {
                    "latency": (10.0 * latency * noise[0], "lower"),
                    "throughput": (100.0 * noise[1], "higher"),
                    "accuracy": (accuracy, "higher"),  # fixed seed: no spread
                },
            )
            rec["inputs"].update(inputs or {})
            recs.append(rec)
            atomic_write_json(self.root / "results" / EXP / "runs" / f"{rec['key']}.json", rec)
        night = findings.Night(
            night=n, run_id=f"r{n}", started="", suite="", correction="holm",
            git={"commit": f"c{n:03d}" + "0" * 36},
        )  # fmt: skip
        night.experiments[EXP] = findings.ExperimentOutcome(
            version=n, keys=[r["key"] for r in recs]
        )
        hist = history.read_history(self.root)
        part = nightly.evaluate(
            self.root, hist, night, self.suite, self.entry, recs, METRICS, self.declared
        )
        nightly.judge(night, [part])
        history.append_history(self.root, nightly.history_entry(night))
        return night


def verdict(night: findings.Night, metric: str) -> findings.Finding:
    return next(f for f in night.findings if f.metric == metric)


def test_flagged_night_stays_out_of_the_baseline_until_accepted(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    for _ in range(5):
        assert lab.night().exit_code == 0
    n6 = lab.night(latency=1.3)
    assert verdict(n6, "latency").verdict == regress.REGRESSION
    n7 = lab.night(latency=1.3)  # the same level again: still a regression
    f7 = verdict(n7, "latency")
    assert f7.verdict == regress.REGRESSION and f7.excluded_nights == [6]
    assert f7.baseline_median == pytest.approx(10.0, rel=0.05)
    n8 = lab.night(latency=1.3)
    assert verdict(n8, "latency").excluded_nights == [6, 7] and n8.exit_code == 1

    rec = history.accept(tmp_path, 6, metric="latency", reason="new tokenizer, slower by design")
    assert rec["through"] == 8 and [c["metric"] for c in rec["covers"]] == ["latency"]
    saved = history.read_history(tmp_path)[5]["accepted"][0]  # recorded in the history
    assert saved["reason"] == "new tokenizer, slower by design" and saved["night"] == 6

    n9 = lab.night(latency=1.3)
    f9 = verdict(n9, "latency")
    assert f9.verdict == regress.UNCHANGED, f9
    assert f9.baseline_nights == 3 and f9.excluded_nights == []  # nights 8, 7, 6
    assert f9.baseline_median == pytest.approx(13.0, rel=0.05)
    assert any("starts at night #6" in n for n in f9.notes)
    assert not [c for c in n9.open_change_points if c.metric == "latency"]
    assert n9.exit_code == 0


def test_accept_rejects_bad_input(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    for _ in range(3):
        lab.night()
    with pytest.raises(BadInput) as e:
        history.accept(tmp_path, 99)
    assert e.value.path == "<night>"
    lab.night(accuracy=0.5)
    with pytest.raises(BadInput) as e:
        history.accept(tmp_path, 4, metric="latency")
    assert e.value.path == "--metric" and "accuracy" in e.value.expected


def test_creeping_history_is_caught_by_change_points(tmp_path: Path) -> None:
    lab = Lab(tmp_path, seed=3)
    for _ in range(15):
        lab.night()
    level = 1.0
    for _ in range(10):  # +3 % a night: under min_effect (10 %) from one night to the next
        level *= 1.03
        n = lab.night(latency=level)
    cps = [c for c in n.change_points if c.metric == "latency"]
    assert cps and all(c.direction == "regression" for c in cps), cps
    first = min(cps, key=lambda c: c.night)
    assert first.open and abs(first.night - 16) <= 3, first
    assert first.commit_at == f"c{first.night:03d}" + "0" * 36
    assert first.p_value < 0.001 and first.current_vs_before > 0.2
    assert n.exit_code == 1
    entry = history.read_history(tmp_path)[-1]["experiments"][EXP]
    assert any(c["open"] for c in entry["change_points"])


def test_one_night_spike_is_not_a_change_point(tmp_path: Path) -> None:
    lab = Lab(tmp_path, seed=5)
    for i in range(20):
        n = lab.night(latency=1.5 if i == 10 else 1.0)
    assert [c for c in n.change_points if c.metric == "latency"] == []


def test_noiseless_metric_1_percent_change_is_reported_exactly(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    for _ in range(3):
        lab.night(accuracy=0.900)
    n = lab.night(accuracy=0.891)  # -1 %, far below min_effect 0.10
    f = verdict(n, "accuracy")
    assert f.verdict == regress.REGRESSION and f.method == "deterministic"
    assert f.change == pytest.approx(-0.01) and "0.9 -> 0.891" in " ".join(f.notes)
    assert n.exit_code == 1


def test_metric_declared_noiseless_is_compared_exactly_despite_spread() -> None:
    entry = suite.Entry(index=0, name=EXP)
    s = suite.Suite(file=Path("s.yaml"), name="s", description="", entries=[entry])
    pol = s.policy(entry, "luts", {"luts": {"unit": "LUT", "better": "lower", "noiseless": True}})
    assert pol.noiseless and not s.policy(entry, "luts", {}).noiseless
    base, now = [1000.0, 1000.0, 1001.0] * 3, [1010.0, 1010.0, 1011.0]  # +1 %
    sh = regress.shift(base, now, "lower", pol.noiseless)
    d = regress.decide([sh], [pol])[0]
    assert sh.method == "exact" and d.verdict == regress.REGRESSION
    noisy = regress.decide([regress.shift(base, now, "lower")], [Policy()])[0]
    assert noisy.verdict != regress.REGRESSION  # what min_effect would have said


def test_input_change_resets_the_baseline_loudly_unless_neutral(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    for _ in range(5):
        lab.night()
    n = lab.night(latency=1.3, inputs={"runs": 200})
    f = verdict(n, "latency")
    assert f.verdict == regress.NO_BASELINE
    assert "baseline reset because input 'runs' 100 -> 200" in f.reset
    assert "BASELINE RESET" in dashboard.text(n)

    lab2 = Lab(tmp_path / "neutral", neutral=["log_every"])
    for _ in range(5):
        lab2.night()
    n2 = lab2.night(latency=1.3, inputs={"log_every": 10})
    f2 = verdict(n2, "latency")
    assert f2.verdict == regress.REGRESSION and f2.baseline_nights == 5 and not f2.reset


def test_strict_fails_underpowered_and_no_baseline(tmp_path: Path) -> None:
    lab = Lab(tmp_path)
    first = lab.night()
    assert first.exit_code == 0 and first.not_judged
    first.strict = True
    assert first.exit_code == 1
    out = dashboard.text(first)
    assert out.index("NO BASELINE") < out.index("UNCHANGED / NOT JUDGED")
