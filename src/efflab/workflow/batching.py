"""Batching short invocations into shared cluster jobs (Snakemake job groups).

On SLURM every job pays a scheduler round trip (submission, scheduling, status
polls: seconds to a minute); a trivial invocation takes milliseconds. Snakemake's own
remedy is job groups: jobs of one group are submitted together as one job, in
`--group-components K` connected components per submission, and run inside that one
allocation through the normal runner. efflab puts an invocation in a group when

- its script asks for one (`resources: {group: NAME}` in meta.yaml), or
- the run asks for batching (`efflab run --batch-seconds S`) and the script's
  `resources.expected_s` (default 10 s) is shorter than S (group `efflab-batch`);

and sizes each group so one submission holds about S seconds of work (default 600 s
for script groups): K = S // the longest expected_s of its members. Groups only apply
to non-local executors (Snakemake ignores them locally), so local runs are unchanged.
`group_of` is shared with workflows/rules/efflab.smk, so both decide alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

DEFAULT_EXPECTED_S = 10.0
DEFAULT_BATCH_S = 600.0
BATCH_GROUP = "efflab-batch"


@dataclass(frozen=True)
class Batching:
    seconds: float  # about how much work one submitted job holds
    components: dict[str, int]  # group -> invocations (components) per submitted job

    def snakemake_args(self) -> list[str]:
        return ["--group-components", *(f"{g}={k}" for g, k in sorted(self.components.items()))]


def expected_s(resources: dict[str, Any]) -> float:
    return float(resources.get("expected_s", DEFAULT_EXPECTED_S))


def group_of(resources: dict[str, Any], batch_seconds: float | None) -> str | None:
    """The job group of an invocation with these resources, or None."""
    if resources.get("group"):
        return str(resources["group"])
    if batch_seconds and expected_s(resources) < batch_seconds:
        return BATCH_GROUP
    return None


def plan(invocations: Iterable[dict[str, Any]], batch_seconds: float | None) -> Batching | None:
    """Group sizes for the invocations that will run (invocation.json dicts)."""
    seconds = batch_seconds or DEFAULT_BATCH_S
    longest: dict[str, float] = {}
    for inv in invocations:
        res = inv.get("resources") or {}
        g = group_of(res, batch_seconds)
        if g is not None:
            longest[g] = max(longest.get(g, 0.0), expected_s(res))
    if not longest:
        return None
    return Batching(seconds, {g: max(1, int(seconds // e)) for g, e in longest.items()})
