"""Batching short invocations into shared cluster jobs.

On SLURM every job pays a scheduler round trip (submission, scheduling, status
polls: seconds to a minute); a trivial invocation takes milliseconds. Snakemake's
own remedy, job groups (`group:` + `--group-components`), was tried first and
measured: inside the allocation the jobstep plugin still starts one `srun` and one
full Snakemake per member (~4.5 s each here), so 50 trivial invocations in one group
took 297 s against 5.4 s locally. So a batch is one Snakemake job of its own rule
(`efflab_batch` in workflows/rules/efflab.smk) whose shell is one runner process
running its members in order (`runner --batch FILE`), each through the normal
`run_invocation`: one submission, one Snakemake start-up, one Python start-up.

An invocation is batched when
- its script asks for it (`resources: {group: NAME}` in meta.yaml: a batch of NAME), or
- the run asks (`efflab run --batch-seconds S`) and the script's
  `resources.expected_s` (default 10 s) is shorter than S (batches of `efflab-batch`);

and a batch holds about S seconds of work (default 600 s for script groups): at most
S // the longest expected_s of its group's members. Members come in dependency order;
a member joins its group's open batch only when that cannot close a cycle between
batches (every batch it waits for, directly or through unbatched invocations, comes
earlier), else it opens the next one. Local runs are batched only when
`--batch-seconds` asks (the job server already makes a local job cheap).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_EXPECTED_S = 10.0
DEFAULT_BATCH_S = 600.0
BATCH_GROUP = "efflab-batch"
FOLDER = "artifacts/.batches"  # <name>.json (members), <name>.done (the rule's output)


@dataclass
class Batch:
    group: str
    capacity: int
    members: list[dict[str, Any]] = field(default_factory=list)  # invocation.json dicts

    def name(self, run_id: str) -> str:
        """Per run: a run's batch files are its own, removed when its Snakemake ends."""
        keys = "\n".join([run_id, *(m["key"] for m in self.members)])
        return hashlib.sha256(keys.encode()).hexdigest()[:16]

    def spec(self) -> dict[str, Any]:
        """What the rule and the runner read: members in order, the allocation's size."""
        res = [m.get("resources") or {} for m in self.members]
        return {
            "group": self.group,
            "members": [f"artifacts/{m['alias']}/{m['key']}" for m in self.members],
            "keys": [m["key"] for m in self.members],
            "threads": max(int(r.get("cpus", 1)) for r in res),
            "exclusive": any(r.get("exclusive") for r in res),
            "mem_mb": max(int(r.get("mem_mb", 1000)) for r in res),
            # the members run one after another: the allocation's time is their sum,
            # bounded by the longest member's own limit at the least
            "runtime_min": max(
                max(int(r.get("runtime_min", 30)) for r in res),
                math.ceil(2 * sum(expected_s(r) for r in res) / 60),
            ),
        }


def expected_s(resources: dict[str, Any]) -> float:
    return float(resources.get("expected_s", DEFAULT_EXPECTED_S))


def group_of(resources: dict[str, Any], batch_seconds: float | None) -> str | None:
    """The batch group of an invocation with these resources, or None."""
    if resources.get("group"):
        return str(resources["group"])
    if batch_seconds and expected_s(resources) < batch_seconds:
        return BATCH_GROUP
    return None


def _toposorted(invocations: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {i["key"]: i for i in invocations}
    done: set[str] = set()
    out: list[dict[str, Any]] = []
    for key in sorted(by_key):  # a stable order: the same pending set, the same batches
        stack = [(key, False)]
        while stack:
            k, expanded = stack.pop()
            if k in done or k not in by_key:
                continue
            if expanded:
                done.add(k)
                out.append(by_key[k])
                continue
            stack.append((k, True))
            stack.extend((d["key"], False) for d in by_key[k]["deps"].values())
    return out


def plan(invocations: Iterable[dict[str, Any]], batch_seconds: float | None) -> list[Batch]:
    """Batches (of two or more members) for the invocations that will run."""
    pending = _toposorted(invocations)
    seconds = batch_seconds or DEFAULT_BATCH_S
    longest: dict[str, float] = {}
    for inv in pending:
        g = group_of(inv.get("resources") or {}, batch_seconds)
        if g is not None:
            longest[g] = max(longest.get(g, 0.0), expected_s(inv.get("resources") or {}))
    batches: list[Batch] = []
    open_: dict[str, int] = {}
    index: dict[str, int] = {}  # key -> its batch
    floor: dict[str, int] = {}  # key -> the latest batch it waits for (-1: none)
    for inv in pending:
        deps = [d["key"] for d in inv["deps"].values()]
        at_least = max([index[d] for d in deps if d in index] or [-1])  # may share it
        after = max([floor.get(d, -1) for d in deps if d not in index] or [-1])
        g = group_of(inv.get("resources") or {}, batch_seconds)
        if g is None:
            floor[inv["key"]] = max(at_least, after)
            continue
        i = open_.get(g)
        if i is None or len(batches[i].members) >= batches[i].capacity or i < at_least or i <= after:  # fmt: skip
            batches.append(Batch(g, max(1, int(seconds // longest[g]))))
            i = open_[g] = len(batches) - 1
        batches[i].members.append(inv)
        index[inv["key"]] = floor[inv["key"]] = i
    return [b for b in batches if len(b.members) > 1]
