"""What a reproduction produced: experiment runs shared by papers, claim results, and a
paper's result. Kept apart from orchestration (reproduce) and rendering (report), so
both import these types and neither imports the other's module back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from efflab.papers import claims
from efflab.papers.evaluate import Outcome
from efflab.papers.samples import Samples
from efflab.papers.spec import Claim, Paper
from efflab.plan.planner import Plan
from efflab.workflow.pipeline import ExperimentResult

VERDICTS = {
    claims.PASS: "reproduced",
    claims.FAIL: "not reproduced",
    claims.INCONCLUSIVE: "inconclusive",
    claims.ERROR: "error",
    claims.NOT_APPLICABLE: "not applicable",
}


@dataclass
class ExperimentRun:
    """One distinct (experiment, overrides) to run, shared by every paper that needs it."""

    name: str
    overrides: dict[str, Any]
    plan: Plan
    papers: list[str] = field(default_factory=list)
    result: ExperimentResult | None = None
    error: str | None = None
    wall_s: float = 0.0
    runtime: str = "host"
    samples: Samples | None = None  # per-repetition values the intervals come from
    remeasured: int = 0  # contended timing invocations measured again
    still_contended: int = 0  # contended after the last allowed re-measurement
    remeasure_stop: str = ""  # why re-measuring stopped while some were still contended
    not_applicable: str = ""  # what the machine lacks that every paper needing it requires

    @property
    def table(self) -> pd.DataFrame | None:
        return None if self.result is None else self.result.table


@dataclass
class Check:
    """The claim's condition run where it must not hold: its control or a placebo."""

    label: str
    condition: str  # rendered
    outcome: Outcome
    expect: str = "fail"  # "fail"; "holds" for an equivalence claim's placebo

    @property
    def as_expected(self) -> bool:
        want = claims.PASS if self.expect == "holds" else claims.FAIL
        return self.outcome.status == want


@dataclass
class ClaimResult:
    claim: Claim
    outcome: Outcome
    control: Check | None = None
    placebos: list[Check] = field(default_factory=list)
    by_construction: str = ""  # why it holds whatever the mechanism does (-> sanity)

    @property
    def kind(self) -> str:
        """The declared kind, or sanity when a control or placebo showed it cannot fail."""
        return "sanity" if self.by_construction else self.claim.kind

    @property
    def counted(self) -> bool:
        return self.kind == "claim" and self.outcome.status != claims.NOT_APPLICABLE

    @property
    def controlled(self) -> str:
        """controlled | uncontrolled (control: none) | no control declared."""
        c = self.claim.control
        if c is None:
            return "no control declared"
        return "uncontrolled" if c.none else "controlled"

    @property
    def verdict(self) -> str:
        return VERDICTS[self.outcome.status]


@dataclass
class PaperResult:
    paper: Paper
    quick: bool
    runs: dict[str, ExperimentRun]
    results: list[ClaimResult]
    started: str
    report_dir: Path | None = None

    @property
    def counted(self) -> list[ClaimResult]:
        """Claims that decide the verdict (sanity checks are shown, never counted)."""
        return [r for r in self.results if r.counted]

    @property
    def ok(self) -> bool:
        return all(r.outcome.status == claims.PASS for r in self.counted)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {n: r.table for n, r in self.runs.items() if r.table is not None}
