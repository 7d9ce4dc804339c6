"""One claim's verdict with its control and placebos (efflab.papers.controls).

The rules an artifact-evaluation committee needs to trust a "reproduced":

- the claim's condition holds on the measured data (efflab.papers.evaluate);
- its control — the mechanism absent — does not hold, and every placebo (both sides
  from one arm) fails, or holds where the spec declared an equivalence claim;
- a claim whose condition holds on its control or on an undeclared placebo is true by
  construction: shown as a sanity check, never counted;
- a counted claim that holds while a control or placebo could not be decided (an
  inconclusive or broken check) is at best inconclusive: it was not shown it can fail.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from efflab.papers import capabilities, claims, kinds
from efflab.papers.claims import ERROR, INCONCLUSIVE, NOT_APPLICABLE, PASS
from efflab.papers.evaluate import evaluate
from efflab.papers.outcome import Check, ClaimResult
from efflab.papers.samples import Samples
from efflab.papers.spec import Claim


def checks(claim: Claim, tables: Mapping[str, Samples]) -> tuple[Check | None, list[Check]]:
    """The claim's control (None when none is declared or none exists) and placebos."""
    control = None
    ctl = claim.control
    if ctl is not None and not ctl.none:
        cond = ctl.condition(claim.condition)
        # paired: a control that reads one point on both sides (an arm swapped for the
        # other) reads one sample, exactly as a placebo does
        out = evaluate(cond, tables, paired=True)
        control = Check(f"control: {ctl.render()}", claims.render(cond), out)
    points = {n: s.points for n, s in tables.items()}
    placebos = [
        Check(
            f"placebo: {label}",
            claims.render(p),
            evaluate(p, tables, paired=True),
            claim.placebo.expect,
        )
        for label, p in kinds.placebos(claim.condition, points)
    ]
    return control, placebos


def judge(
    claim: Claim, tables: Mapping[str, Samples], host: capabilities.Machine | None = None
) -> ClaimResult:
    """Evaluate the claim, its control and placebos; demote or cap as the rules say.

    On a machine that lacks what the claim requires (`host`, default this one) the
    measurement is still shown, with the verdict "not applicable" naming what is missing.
    """
    out = evaluate(claim.condition, tables)
    control, placebos = checks(claim, tables)
    missing = claim.requires.missing(host or capabilities.this_machine()) if claim.requires else []
    if missing:
        why = f"not applicable on this machine: needs {'; '.join(missing)}"
        out = dataclasses.replace(
            out, status=NOT_APPLICABLE, detail=f"{why}; measured: [{out.status}] {out.detail}"
        )
    by = ""
    if control is not None and control.outcome.status == PASS:
        by = f"it also holds on its control ({claim.control.render()})"  # type: ignore[union-attr]
    else:
        held = [p for p in placebos if p.expect == "fail" and p.outcome.status == PASS]
        if held:
            by = f"it also holds on its {held[0].label}"
    res = ClaimResult(claim, out, control, placebos, by)
    if by or claim.kind != "claim" or out.status != PASS:
        return res
    undecided = [c for c in ([control] if control else []) + placebos if not c.as_expected]
    if undecided:
        c = undecided[0]
        status = ERROR if c.outcome.status == ERROR else INCONCLUSIVE
        why = f"; not shown to be able to fail: its {c.label} is {c.outcome.status}"
        res.outcome = dataclasses.replace(out, status=status, detail=out.detail + why)
    return res
