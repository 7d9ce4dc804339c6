"""Measuring an invocation again: its finished outputs moved aside, so the next pipeline
call runs it instead of serving it from the cache.

Why: a timing taken while the machine was contended (efflab.runtime.contention) is
suspect; views that judge timings (papers' claims, optimize's objectives) measure such
invocations again, a bounded number of rounds, before they use the value. The old
outputs stay beside the new as `outputs.contended-<round>.json`; the run record made
from them is removed (it is derived from outputs.json, and the pipeline writes a record
only where none exists: a stale one would hand back the contended value).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from efflab.core.layout import runs_dir
from efflab.plan.planner import Plan
from efflab.runtime.outputs import DONE_COPY

MAX_ROUNDS = 2  # rounds of re-measuring contended timing invocations


def set_aside(repo: Path, plan: Plan, keys: Iterable[str], round_: int) -> int:
    """Move each invocation's outputs.json aside; how many were moved."""
    moved = 0
    records = runs_dir(repo, plan.experiment.name)
    for k in keys:
        f = repo / plan.invocations[k].folder / "outputs.json"
        if f.exists():
            f.rename(f.with_name(f"outputs.contended-{round_}.json"))
            # the runner's second name for a finished output would bring it back unmeasured
            (f.parent / DONE_COPY).unlink(missing_ok=True)
            moved += 1
        (records / f"{k}.json").unlink(missing_ok=True)
    return moved
