"""The `source: paper` lint on every shipped spec, and on the numbers it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from efflab.papers import sources
from efflab.papers.spec import load_papers

REPO = Path(__file__).resolve().parents[2]


def test_percentages_give_their_fractions() -> None:
    nums = sources.quoted_numbers("shortens training time by up to 34% (Table 2: 4,528 tok/s)")
    assert nums == pytest.approx([34, 0.34, 0.66, 1.34, 2, 4528])
    assert sources.quoted_numbers("v2 of the model, 1.72x") == [1.72]


def test_every_paper_threshold_is_a_number_its_ref_quotes() -> None:
    found = [str(p) for paper in load_papers(REPO, [], True) for p in sources.problems(paper)]
    assert found == [], "\n".join(found)
