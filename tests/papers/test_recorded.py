"""Every shipped claim evaluated on recorded real tables (tests/papers/recorded/).

Most papers need minutes of real measurement (serving engines, training, place and
route) — too slow for every CI run. Their tables were recorded from one real
`reproduce --all --quick` (tools/record-fixtures.py; each file says when, where and at
which commit), and here every claim of every shipped spec is evaluated on them with
the current claim language and statistics: the verdicts, values and intervals must be
the ones that run reported. A spec whose claims or points moved since the recording
fails here until it is recorded again, so the fixtures cannot silently go stale.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from efflab.core.specio import canonical_json
from efflab.papers import samples
from efflab.papers.evaluate import evaluate
from efflab.papers.outcome import VERDICTS
from efflab.papers.reproduce import prepare
from efflab.papers.spec import load_papers

REPO = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).parent / "recorded"
EXPECTED = json.loads((RECORDED / "verdicts.json").read_text())["claims"]
PAPERS = load_papers(REPO, [], True)
RUNS, PER_PAPER = prepare(REPO, PAPERS, True)
TABLES = {
    (d["experiment"], canonical_json(d["overrides"])): d
    for f in sorted(RECORDED.glob("*.json"))
    if f.name != "verdicts.json"
    for d in [json.loads(f.read_text())]
}


def recorded(name: str, overrides: dict) -> samples.Samples:
    d = TABLES.get((name, canonical_json(overrides)))
    assert d is not None, f"no recorded table for {name} {overrides}: tools/record-fixtures.py"
    assert d["recorded"]["git_commit"] and d["records"], name
    recs = [{**r, "status": "ok"} for r in d["records"]]
    return samples.from_records(name, recs, d["points"], d["params"], d["timing"])


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
    for c in paper.claims:
        want = EXPECTED.get(f"{paper.id}/{c.id}")
        assert want is not None, f"{paper.id}/{c.id} was not in the recorded run"
        out = evaluate(c.condition, tables)
        assert VERDICTS[out.status] == want["verdict"], (c.id, out)
        if want["value"] is not None and out.value is not None:
            assert out.value == pytest.approx(want["value"], rel=1e-9), c.id
        for k in ("low", "high"):
            if want[k] is not None:
                assert getattr(out, k) == pytest.approx(want[k], rel=1e-9), (c.id, k)
