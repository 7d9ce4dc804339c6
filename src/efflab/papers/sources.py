"""Lint: a threshold labelled `source: paper` carries a number the spec quotes.

A bar of 1 labelled "paper" where the paper says 0.66 reads as the paper's own
standard while it is ours. Every `source: paper` value must equal a number quoted in
its `ref` (or the claim's `paper.text` or statement, which a default `within` target
refers to): the number itself, or for a percentage p% the fractions p/100, 1 - p/100
and 1 + p/100 ("34% shorter" is a ratio of 0.66, "25% faster" one of 1.25); the
words half, double, twice, triple and quarter count as 0.5, 2, 2, 3 and 0.25.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from efflab.papers import claims
from efflab.papers.spec import Paper

_WORDS = {"half": 0.5, "halve": 0.5, "double": 2.0, "twice": 2.0, "triple": 3.0, "quarter": 0.25}
_WORD = re.compile(r"\b(half|halve|double|twice|triple|quarter)[sd]?\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)(\s*%)?")


@dataclass(frozen=True)
class Problem:
    paper: str
    claim: str
    path: str
    value: float
    quoted: tuple[float, ...]

    def __str__(self) -> str:
        quoted = ", ".join(f"{q:g}" for q in self.quoted) or "no number"
        return (
            f"{self.paper}/{self.claim} {self.path}: source: paper value {self.value:g} "
            f"is not a number its ref quotes ({quoted})"
        )


def quoted_numbers(text: str) -> list[float]:
    """Numbers a text quotes, with a percentage's fractions (see the module doc)."""
    out: list[float] = []
    for m in _NUMBER.finditer(text):
        try:
            n = float(m.group(1).replace(",", ""))  # 4,528 -> 4528
        except ValueError:
            continue
        out.append(n)
        if m.group(2):
            out += [n / 100, 1 - n / 100, 1 + n / 100]
    out += [_WORDS[m.group(1).lower()] for m in _WORD.finditer(text)]
    return out


def problems(paper: Paper) -> list[Problem]:
    """Every `source: paper` threshold of the paper's own claims not quoted in its text."""
    out = []
    for c in paper.claims:
        if c.cites:
            continue  # checked in the cited paper
        texts = [c.statement, c.paper.text if c.paper else ""]
        for t in claims.thresholds(c.condition):
            if t.source != "paper":
                continue
            nums = quoted_numbers(" ".join([t.basis, *texts]))
            if not any(math.isclose(t.value, n, rel_tol=1e-6, abs_tol=1e-9) for n in nums):
                out.append(Problem(paper.id, c.id, t.path, t.value, tuple(dict.fromkeys(nums))))
    return out
