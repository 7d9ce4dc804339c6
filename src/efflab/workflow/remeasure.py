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

import json
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


def contended_deps(repo: Path, plan: Plan, points: Iterable[str]) -> list[str]:
    """Exclusive dependencies of `points` measured while contended, and every
    invocation of the plan downstream of them.

    Why: a dependency can be a measurement others build on (serve-calibrate's capacity
    sets the offered load of every serving point); a starved one skews them all. The
    points above it are included because a finished target is served from its own
    outputs.json, so re-running the dependency alone would change nothing downstream.
    """
    wanted = set(points)
    below: set[str] = set()
    todo = list(wanted)
    while todo:  # the dependency closure of the points
        for d in plan.invocations[todo.pop()].deps.values():
            if d["key"] not in below and d["key"] in plan.invocations:
                below.add(d["key"])
                todo.append(d["key"])
    bad = {
        k
        for k in below - wanted
        if plan.invocations[k].resources.get("exclusive") and _contended(repo, plan, k)
    }
    if not bad:
        return []
    out = set(bad)
    grew = True
    while grew:  # everything that depends on a contended dependency, transitively
        grew = False
        for k, inv in plan.invocations.items():
            if k not in out and any(d["key"] in out for d in inv.deps.values()):
                out.add(k)
                grew = True
    return sorted(out)


def _contended(repo: Path, plan: Plan, key: str) -> bool:
    f = repo / plan.invocations[key].folder / "outputs.json"
    try:
        out = json.loads(f.read_text())
    except (OSError, ValueError):
        return False
    return bool(((out or {}).get("contention") or {}).get("contended"))
