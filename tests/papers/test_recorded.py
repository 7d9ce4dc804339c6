"""Every shipped claim evaluated on recorded real tables (tests/papers/recorded/).

Most papers need minutes of real measurement (serving engines, training, place and
route) — too slow for every CI run. Their tables were recorded from real `reproduce
--quick` runs (tools/record-fixtures.py; each paper's entry says which reproduction,
when, and on which CPU), and here every claim of every shipped spec is judged on them
with the current claim language, statistics, controls and placebos: the verdicts,
values, intervals, kinds (sanity when by construction), every threshold's value and
source, and each control's and placebo's outcome must be the ones recorded. A spec
whose claims, bars or points moved since the recording fails here until it is
recorded again, so the fixtures cannot silently go stale and a relaxed bar
(0.9 -> 0.5) cannot pass unnoticed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efflab.core.specio import canonical_json
from efflab.papers import capabilities, claims, samples, verdict
from efflab.papers.reproduce import prepare
from efflab.papers.spec import load_papers

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "recorded"
DATA = json.loads((RECORDED / "verdicts.json").read_text())
EXPECTED = DATA["claims"]
PAPERS = load_papers(REPO, [], True)
RUNS, PER_PAPER = prepare(REPO, PAPERS, True, capabilities.Machine("any", frozenset(), 64, ()))
TABLES = {
    (d["experiment"], canonical_json(d["overrides"])): d
    for f in sorted(RECORDED.glob("*.json"))
    if f.name != "verdicts.json"
    for d in [json.loads(f.read_text())]
}
OUTCOME = {"pass": "holds", "fail": "fails", "inconclusive": "undecided", "error": "error"}


def recorded(name: str, overrides: dict) -> samples.Samples:
    d = TABLES.get((name, canonical_json(overrides)))
    assert d is not None, f"no recorded table for {name} {overrides}: tools/record-fixtures.py"
    assert d["recorded"]["git_commit"] and d["records"], name
    recs = [{**r, "status": "ok"} for r in d["records"]]
    return samples.from_records(
        name, recs, d["points"], d["params"], d["timing"], d.get("noiseless", ())
    )


def recorded_machine(pid: str) -> capabilities.Machine:
    """The machine the paper was recorded on, as far as claims' preconditions go."""
    m = DATA["papers"][pid]
    feats = m.get("cpu_features")
    # recorded before preconditions existed: judged as if nothing were missing, which
    # is how that run judged it
    flags = frozenset(capabilities.RELEVANT if feats is None else feats)
    return capabilities.Machine(m.get("cpu_model") or "", flags, m.get("usable_cores") or 64, ())


@pytest.mark.parametrize("paper", PAPERS, ids=[p.id for p in PAPERS])
def test_claims_on_recorded_tables_give_the_recorded_verdicts(paper) -> None:
    mine = PER_PAPER[paper.id]
    tables = {}
    for name, run in mine.items():
        s = recorded(name, run.overrides)
        planned = {json.dumps(pt.params, sort_keys=True) for pt in run.plan.points}
        got = {json.dumps(pt, sort_keys=True) for pt in s.points}
        assert got == planned, f"{name}: the plan's points moved since the recording"
        tables[name] = s
    host = recorded_machine(paper.id)
    for c in paper.claims:
        want = EXPECTED.get(f"{paper.id}/{c.id}")
        assert want is not None, f"{paper.id}/{c.id} was not in the recorded run"
        bars = [
            {"value": t.value, "source": t.source, "path": t.path}
            for t in claims.thresholds(c.condition)
        ]
        assert bars == want["thresholds"], f"{c.id}: a threshold moved since the recording"
        r = verdict.judge(c, tables, host)
        out = r.outcome
        assert r.verdict == want["verdict"], (c.id, out)
        assert r.kind == want["kind"], (c.id, r.by_construction)
        if want["value"] is not None and out.value is not None:
            assert out.value == pytest.approx(want["value"], rel=1e-9), c.id
        for k in ("low", "high"):
            if want[k] is not None:
                assert getattr(out, k) == pytest.approx(want[k], rel=1e-9), (c.id, k)
        control = None if r.control is None else OUTCOME[r.control.outcome.status]
        assert control == want["control"], c.id
        assert [OUTCOME[p.outcome.status] for p in r.placebos] == want["placebos"], c.id


def test_no_declared_claim_holds_by_construction_on_recorded_data() -> None:
    """A claim the spec counts must fail its control and placebos on real data: the
    audit's demotions are in the specs, not left to the run."""
    bad = {
        k
        for p in PAPERS
        for c in p.claims
        if c.kind == "claim"
        for k, v in [(f"{p.id}/{c.id}", EXPECTED[f"{p.id}/{c.id}"])]
        if v["kind"] != "claim"
    }
    assert bad == set()
