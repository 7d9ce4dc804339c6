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
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from efflab.core.errors import BadInput
from efflab.core.layout import runs_dir
from efflab.plan.planner import Plan
from efflab.runtime import contention
from efflab.runtime.outputs import DONE_COPY

MAX_ROUNDS = 2  # rounds of re-measuring contended timing invocations
# how long a round waits for the machine to calm down before measuring again; a round
# under the same load would only repeat the contended value (EFFLAB_QUIET_WAIT_S)
QUIET_WAIT_S = 120.0
QUIET_WINDOW_S = 2.0  # busy time is sampled over this long


def others_busy_cores(window_s: float = QUIET_WINDOW_S, sleep=time.sleep) -> float | None:
    """Cores the machine kept busy over `window_s` beyond this process (None: unknown)."""
    b0, c0 = contention.busy_seconds(), time.process_time()
    sleep(window_s)
    b1, c1 = contention.busy_seconds(), time.process_time()
    if b0 is None or b1 is None:
        return None
    return max(0.0, (b1 - b0 - (c1 - c0)) / window_s)


# what a wait reports while it lasts: (others' busy cores, seconds waited, seconds allowed)
OnWait = Callable[[float, float, float], None]


def configured_wait_s(value: float | None = None) -> float:
    """The wait allowed: `value` (--quiet-wait / --no-quiet-wait) when given, else
    $EFFLAB_QUIET_WAIT_S, else QUIET_WAIT_S; 0 means no wait at all."""
    if value is not None:
        return max(0.0, float(value))
    raw = os.environ.get("EFFLAB_QUIET_WAIT_S", "").strip()
    if not raw:
        return QUIET_WAIT_S
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise BadInput(
            "$EFFLAB_QUIET_WAIT_S", "$", "a number of seconds (0: no wait)", raw
        ) from None


def wait_for_quiet(
    max_wait_s: float | None = None,
    probe: Callable[[], float | None] = others_busy_cores,
    clock: Callable[[], float] = time.monotonic,
    on_wait: OnWait | None = None,
) -> bool:
    """Wait until other work would no longer make an exclusive timing contended (it
    would leave `contention.SLACK_CORES` at most); False when it stayed busy for
    `max_wait_s` (default: `configured_wait_s()`; 0: no wait at all). `on_wait` hears
    of every busy sample, so a wait is never silent."""
    max_wait_s = configured_wait_s() if max_wait_s is None else max_wait_s
    if max_wait_s <= 0:
        return True  # 0: measure at once, whatever the load
    start = clock()
    deadline = start + max_wait_s
    while True:
        busy = probe()
        if busy is None or busy <= contention.SLACK_CORES:
            return True
        if on_wait is not None:
            on_wait(busy, min(clock() - start, max_wait_s), max_wait_s)
        if clock() >= deadline:
            return False


class QuietWaiter:
    """The one waiter of a command (`run`, `reproduce`, `optimize`): `wait_for_quiet`
    with one budget of `max_wait_s` for the whole command. Once the budget is spent
    (the machine stayed busy through it), later calls only probe once: a machine busy
    for minutes is likely to stay busy, and a reproduction of twenty experiments or a
    study of twenty batches should not wait twenty times.

    `max_wait_s` None: $EFFLAB_QUIET_WAIT_S or QUIET_WAIT_S; 0: never wait (each call
    answers True at once, as `--no-quiet-wait` asks)."""

    def __init__(
        self,
        max_wait_s: float | None = None,
        on_wait: OnWait | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_wait_s = max_wait_s
        self.budget_s = configured_wait_s(max_wait_s)
        self.on_wait = on_wait
        self.clock = clock
        self.spent_s = 0.0
        self.patient = True

    def __call__(self) -> bool:
        if self.budget_s <= 0:
            return True
        if not self.patient:
            return wait_for_quiet(1e-9)  # one probe
        left = self.budget_s - self.spent_s
        t0 = self.clock()
        quiet = wait_for_quiet(max(left, 1e-9), on_wait=self._report)
        self.spent_s += self.clock() - t0
        if not quiet or self.spent_s >= self.budget_s:
            self.patient = False
        return quiet

    def _report(self, busy: float, waited: float, allowed: float) -> None:
        if self.on_wait is not None:
            self.on_wait(busy, self.spent_s + waited, self.budget_s)


def stop_reason(
    round_: int,
    rounds: int,
    contended: Iterable[str],
    previous: Iterable[str] | None,
    wait: Callable[[], bool] = wait_for_quiet,
) -> str | None:
    """Why not to measure `contended` again after round `round_` (None: go on).

    Bounded three ways: nothing is contended; the rounds are used up; the last round
    cleared nothing (every key re-measured came back contended again: the machine is
    busy for longer than a round, so another one only adds wall time); or the machine
    stayed busy for the whole wait before the next round."""
    now = set(contended)
    if not now:
        return "none contended"
    if round_ >= rounds:
        return f"still contended after {rounds} re-measurement rounds"
    if previous is not None and set(previous) <= now:
        return "the last re-measurement round cleared none of them"
    if not wait():
        return "the machine stayed busy, so they were not measured again"
    return None


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
