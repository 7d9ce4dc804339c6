"""The shipped paper specs stay consistent with the experiments they use.

Planning only (no job runs, about a second): every claim of every paper under
workflows/papers/ must name declared metrics and planned parameter values, in both
--quick and full mode — so a family changing its grid or metric names breaks this
test, not a user's `efflab reproduce --all`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from efflab.papers import claims
from efflab.papers import reproduce as papers
from efflab.papers import spec as paper_spec

REPO = Path(__file__).resolve().parents[2]
IDS = paper_spec.paper_ids(REPO)


SHIPPED = {
    "sarathi-serve",
    "efficientformer",
    "lowformer",
    "int8-ptq",
    "dual-cnn",
    "mixed-precision",
    "mixed-precision-energy",
    "activation-checkpointing",
    "splitwise",
    "polca",
    "tellme",
}


def test_papers_are_shipped() -> None:
    assert SHIPPED <= set(IDS)


@pytest.mark.parametrize("quick", [True, False], ids=["quick", "full"])
def test_every_claim_checks_against_its_plan(quick: bool) -> None:
    loaded = paper_spec.load_papers(REPO, IDS)
    runs, per_paper = papers.prepare(REPO, loaded, quick)
    # experiments are shared: each (experiment, overrides) runs once for all papers
    assert len({(r.name, repr(sorted(r.overrides.items()))) for r in runs}) == len(runs)
    assert set(per_paper) == set(IDS)


@pytest.mark.parametrize("pid", IDS)
def test_claims_are_well_formed(pid: str) -> None:
    p = paper_spec.load_paper(REPO, pid)
    assert p.link.startswith("https://") and p.authors and p.summary
    for c in p.claims:
        assert c.statement.strip() and claims.render(c.condition)
        # a number the paper reports must say what it is
        if c.paper is not None:
            assert c.paper.text.strip()
