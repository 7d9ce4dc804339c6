"""Pinned cores for exclusive timing jobs: one measured set, everything else beside it.

A timing job (`resources.exclusive`) shares nothing with the run when it has cores of
its own. A local run with at least two allowed CPUs splits them once, at its start
(`plan`): the measured set (the highest-numbered `MEASURED_CORES`; cpu0 takes most
interrupts) and the rest. The run's machinery (efflab, Snakemake, the job server)
and every other job is confined to the rest; an exclusive job runs on the measured
set: `sched_setaffinity` on the host (set by the parent right after the fork and by
the child itself, so no instant runs unpinned), `cpuset_cpus` for a container. The
split travels to the job side in $EFFLAB_PIN ("MEASURED|REST", kernel list format),
and Snakemake schedules one exclusive job at a time (resource `efflab_measure`) while
other jobs run on the rest, never more of their threads than it has cores (resource
`efflab_rest`). A run without an exclusive job is not split: it keeps every core.

The record says what held: the affinity read back from the running script and the
busy time other work put on the measured cores meanwhile (/proc/stat per CPU). A
script that changes its own affinity, or a machine whose other users run on the
measured core, shows there. On one allowed CPU nothing is pinned and the record says
so. Stdlib only: this runs in the job process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ENV = "EFFLAB_PIN"
OFF_ENV = "EFFLAB_NO_PIN"  # set (to anything but "") to run unpinned, e.g. to compare
MEASURED_CORES = 1
RESOURCE = "efflab_measure"  # Snakemake resource: one exclusive job at a time
REST = "efflab_rest"  # Snakemake resource: other jobs' threads within the rest's cores


@dataclass(frozen=True)
class CorePlan:
    measured: tuple[int, ...]
    rest: tuple[int, ...]

    def encode(self) -> str:
        return f"{_fmt(self.measured)}|{_fmt(self.rest)}"

    @classmethod
    def decode(cls, text: str) -> CorePlan | None:
        m, sep, r = text.partition("|")
        try:
            measured, rest = tuple(_parse(m)), tuple(_parse(r))
        except ValueError:
            return None
        if not sep or not measured or not rest or set(measured) & set(rest):
            return None
        return cls(measured, rest)


def _fmt(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))


def _parse(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def plan(allowed: set[int] | None = None) -> CorePlan | None:
    """Split the CPUs this process may use; None when fewer than two (or turned off)."""
    if os.environ.get(OFF_ENV):
        return None
    cpus = sorted(allowed if allowed is not None else os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    n = min(MEASURED_CORES, len(cpus) - 1)
    return CorePlan(tuple(cpus[-n:]), tuple(cpus[:-n]))


def current() -> CorePlan | None:
    """The run's split, as the job side receives it ($EFFLAB_PIN)."""
    text = os.environ.get(ENV)
    return CorePlan.decode(text) if text else None


def cpus_for(resources: dict[str, Any], cp: CorePlan | None = None) -> tuple[int, ...] | None:
    """The CPUs an invocation runs on under the run's split (None: not pinned)."""
    cp = cp if cp is not None else current()
    if cp is None:
        return None
    return cp.measured if resources.get("exclusive") else cp.rest


def apply(pid: int, cpus: tuple[int, ...] | None) -> None:
    """Pin `pid` (0: this process); a CPU that went offline is the record's to show."""
    if cpus is None:
        return
    with contextlib.suppress(OSError):
        os.sched_setaffinity(pid, cpus)


@contextlib.contextmanager
def inherited(cpus: tuple[int, ...] | None) -> Iterator[None]:
    """This process on `cpus` for the duration: a child started meanwhile (vfork, where
    no code of ours runs in the child) inherits them."""
    if cpus is None:
        yield
        return
    old = os.sched_getaffinity(0)
    apply(0, cpus)
    try:
        yield
    finally:
        apply(0, tuple(old))


def read_back(pid: int) -> list[int] | None:
    try:
        return sorted(os.sched_getaffinity(pid))
    except OSError:
        return None


def report(
    cpus: tuple[int, ...] | None,
    affinity: list[int] | None,
    others_on_cpus: float | None,
    cp: CorePlan | None = None,
) -> dict[str, Any]:
    """The `pinning` block of outputs.json: asked, read back, and whether it held."""
    cp = cp if cp is not None else current()
    if cpus is None:
        return {
            "pinned": False,
            "why": "turned off ($EFFLAB_NO_PIN)"
            if os.environ.get(OFF_ENV)
            else "the run was not split: no exclusive job in it, fewer than two allowed "
            "CPUs, or not a local run",
        }
    return {
        "pinned": True,
        "cpus": list(cpus),
        "rest": list(cp.rest) if cp else None,
        "affinity": affinity,
        "held": affinity is not None and affinity == sorted(cpus),
        "others_on_cpus": others_on_cpus,
    }
