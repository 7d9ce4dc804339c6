"""Nightly baseline history: which run records formed each past night, and pooling them.

`results/nightly/history.jsonl` has one JSON line per night:

    {"night": 7, "run_id": "...", "started": "...", "ended": "...", "suite": "...",
     "git": {"commit", "dirty"}, "exit_code": 0|1,
     "experiments": {"<exp>": {"version": 12, "keys": ["<record key>", ...],
                               "workload": {"quick", "repetitions", "overrides"},
                               "failures": [...], "flagged": [{point, group, metric,
                                                              verdict, change}],
                               "change_points": [{group, metric, night, ...}]}},
     "accepted": [{"night", "through", "metric", "reason", "at", "user", "covers"}]}

The night's record keys (not its table) are the baseline: the U test needs the
repetitions, which a table has already aggregated away. Records are matched across
nights by `group_of` (script + resolved inputs, minus the inputs the suite marks as
`neutral_inputs`), not by point parameters alone: a night that ran another workload
(another input, a changed default) is not comparable, and the baseline says so
(`Baseline.reset`).

A night flagged as a regression for a (point, metric) stays out of that pair's
baseline, so a persistent regression keeps failing instead of becoming the new normal,
until someone accepts the new level (`efflab nightly accept`, `accept`): the
acceptance is written into the accepted night's line and the pair's baseline then
starts at that night.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core import layout
from efflab.core.clock import now_iso
from efflab.core.errors import BadInput, RunFailed
from efflab.core.layout import history_file, nightly_dir
from efflab.core.locks import FileLock, Locked
from efflab.core.specio import atomic_write_text, canonical_json
from efflab.results import lookup

SCAN_FACTOR = 10  # a baseline of K nights is looked for in the last 10*K nights
REGRESSION = "regression"  # the verdict string of efflab.nightly.regression (no import cycle)


def nightly_lock(repo: Path, what: str, run_id: str = "") -> FileLock:
    """The lock over the nightly history (a night, an accept, an import), taken now
    or RunFailed naming who holds it: nights are never queued behind each other."""
    lock = FileLock(nightly_dir(repo) / ".lock", what, run_id)
    try:
        return lock.acquire(wait=False)
    except Locked as exc:
        raise RunFailed(
            f"another `efflab nightly` ({exc.holder}) holds {lock.path}; retry when it ends"
        ) from None


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "(single point)"


def read_history(repo: Path) -> list[dict[str, Any]]:
    f = history_file(repo)
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def write_history(repo: Path, entries: list[dict[str, Any]]) -> None:
    """Rewrite the whole file atomically: a crash never leaves half a line behind."""
    text = "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in entries)
    atomic_write_text(history_file(repo), text)


def append_history(repo: Path, entry: dict[str, Any]) -> None:
    write_history(repo, [*read_history(repo), entry])


def ident_of(rec: dict[str, Any], neutral: Iterable[str] = ()) -> dict[str, Any]:
    """What makes two records comparable: script alias and resolved inputs."""
    inputs = rec.get("inputs", rec["point"])
    drop = set(neutral)
    if drop:
        inputs = {k: v for k, v in inputs.items() if k not in drop}
    return {"alias": rec["alias"], "inputs": inputs}


def group_of(rec: dict[str, Any], neutral: Iterable[str] = ()) -> str:
    """Comparability key: same script, same resolved inputs (repetition aside), ignoring
    the inputs the suite marks as not affecting the measurement."""
    return hashlib.sha256(canonical_json(ident_of(rec, neutral)).encode()).hexdigest()[:16]


def samples(
    recs: Iterable[dict[str, Any]], neutral: Iterable[str] = ()
) -> dict[tuple[str, str], list[float]]:
    """(group, metric) -> values over the repetitions of one night."""
    out: dict[tuple[str, str], list[float]] = {}
    for rec in recs:
        if rec.get("status") != "ok":
            continue
        g = group_of(rec, neutral)
        for m, v in rec["metrics"].items():
            out.setdefault((g, m), []).append(float(v["value"]))
    return out


def load_night_records(repo: Path, experiment: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    """A night's successful records (their view fields), from the columnar index where it
    holds them, else from their JSON files (efflab.results.lookup)."""
    return lookup.load(layout.experiment_dir(repo, experiment), keys)


def load_nights(
    repo: Path, experiment: str, entries: Iterable[dict[str, Any]]
) -> dict[int, list[dict[str, Any]]]:
    """night -> its records, for many nights with one read of the index."""
    entries = [e for e in entries if (e.get("experiments", {}).get(experiment) or {}).get("keys")]
    keys = [k for e in entries for k in e["experiments"][experiment]["keys"]]
    by_key = {r["key"]: r for r in load_night_records(repo, experiment, keys)}
    return {
        e["night"]: [
            by_key[k] for k in dict.fromkeys(e["experiments"][experiment]["keys"]) if k in by_key
        ]
        for e in entries
    }


# --- acceptance -------------------------------------------------------------------


@dataclass(frozen=True)
class Acceptance:
    """`efflab nightly accept`: the level of night `night` (through `through`) is normal."""

    night: int
    through: int
    metric: str | None
    reason: str
    covers: frozenset[tuple[str, str, str]]  # (experiment, group, metric)

    def covering(self, experiment: str, group: str, metric: str, night: int) -> bool:
        return self.night <= night <= self.through and (experiment, group, metric) in self.covers


def acceptances(history: list[dict[str, Any]]) -> list[Acceptance]:
    out = []
    for entry in history:
        for a in entry.get("accepted", []):
            covers = frozenset((c["experiment"], c["group"], c["metric"]) for c in a["covers"])
            out.append(Acceptance(a["night"], a["through"], a["metric"], a["reason"], covers))
    return out


def flagged_items(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A night's regressions and open change points, as (experiment, group, metric) items."""
    out = []
    for exp, e in entry.get("experiments", {}).items():
        for f in e.get("flagged", []):
            if f["verdict"] == REGRESSION and "group" in f:
                out.append({**f, "experiment": exp, "kind": "regression"})
        for c in e.get("change_points", []):
            if c.get("open"):
                out.append({**c, "experiment": exp, "kind": "change-point"})
    return out


def accept(
    repo: Path, night: int, metric: str | None = None, reason: str = "", user: str | None = None
) -> dict[str, Any]:
    """Record that night `night`'s new level is accepted (for `metric`, or all metrics).

    Covers every regression flag and open change point of that metric from `night` to
    the latest night; their baselines then start at `night`. Bad input (no such night,
    nothing flagged, a metric never flagged) raises BadInput naming the option.
    """
    lock = nightly_lock(repo, "nightly accept")
    try:
        return _accept(repo, night, metric, reason, user)
    finally:
        lock.release()


def _accept(
    repo: Path, night: int, metric: str | None, reason: str, user: str | None
) -> dict[str, Any]:
    file = history_file(repo)
    history = read_history(repo)
    nights = [h["night"] for h in history]
    if night not in nights:
        raise BadInput(
            file,
            "<night>",
            f"a recorded night ({min(nights)}..{max(nights)})" if nights else "a recorded night",
            night,
            "no night is recorded yet" if not nights else "",
        )
    later = [h for h in history if h["night"] >= night]
    items = [i for h in later for i in flagged_items(h)]
    if metric is not None and metric not in {i["metric"] for i in items}:
        known = sorted({i["metric"] for i in items})
        raise BadInput(
            file,
            "--metric",
            f"a metric flagged at night {night} or later ({', '.join(known) or 'none'})",
            metric,
        )
    items = [i for i in items if metric is None or i["metric"] == metric]
    if not items:
        raise BadInput(
            file, "<night>", "a night with a regression or change point to accept", night
        )
    covers = sorted({(i["experiment"], i["group"], i["metric"]) for i in items})
    record = {
        "night": night,
        "through": max(nights),
        "metric": metric,
        "reason": reason,
        "at": now_iso("seconds"),
        "user": user or getpass.getuser(),
        "covers": [{"experiment": e, "group": g, "metric": m} for e, g, m in covers],
    }
    for h in history:
        if h["night"] == night:
            h.setdefault("accepted", []).append(record)
    write_history(repo, history)
    return record


# --- baselines --------------------------------------------------------------------


@dataclass
class PastNight:
    night: int
    commit: str | None
    values: list[float]


@dataclass
class Baseline:
    """The past nights pooled for one (group, metric), newest first, and why."""

    nights: list[PastNight] = field(default_factory=list)
    excluded: list[int] = field(default_factory=list)  # flagged regression, not accepted
    accepted_at: int | None = None  # the baseline starts at this accepted night
    reset: str = ""  # why no past night is comparable although the point ran before

    @property
    def values(self) -> list[float]:
        return [x for n in self.nights for x in n.values]

    def notes(self) -> list[str]:
        out = []
        if self.excluded:
            out.append(
                "baseline excludes night(s) "
                + ", ".join(f"#{n}" for n in sorted(self.excluded))
                + " (flagged regression, not accepted: `efflab nightly accept`)"
            )
        if self.accepted_at is not None:
            out.append(f"baseline starts at night #{self.accepted_at} (new level accepted)")
        if self.reset:
            out.append(self.reset)
        return out


def _input_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    diffs = [
        f"'{k}' {json.dumps(old.get(k, '<absent>'))} -> {json.dumps(new.get(k, '<absent>'))}"
        for k in keys
        if old.get(k, "<absent>") != new.get(k, "<absent>")
    ]
    return ", ".join(diffs)


def baselines(
    repo: Path,
    history: list[dict[str, Any]],
    experiment: str,
    current: list[dict[str, Any]],
    k_for: Callable[[str], int],
    neutral: Iterable[str] = (),
) -> dict[tuple[str, str], Baseline]:
    """(group, metric) -> the baseline for tonight's records, from past nights.

    Scans back from the newest night; per pair, takes up to `k_for(metric)` nights,
    skipping nights flagged as a regression that nobody accepted and stopping at an
    accepted night. A point that ran before with other inputs gets `reset` saying
    which input changed.
    """
    neutral = tuple(neutral)
    now = samples(current, neutral)
    out = {pair: Baseline() for pair in now}
    accepts = acceptances(history)
    kmax = max([k_for(m) for _, m in now] or [1])
    done: set[tuple[str, str]] = set()
    by_point: dict[tuple[str, str], dict[str, Any]] = {}  # (alias, point) -> latest past inputs
    window = history[-SCAN_FACTOR * kmax :]
    nights = load_nights(repo, experiment, window) if out else {}
    for entry in reversed(window):
        if len(done) == len(out):
            break
        exp = entry.get("experiments", {}).get(experiment)
        if not exp or not exp.get("keys"):
            continue
        recs = nights.get(entry["night"], [])
        for rec in recs:
            by_point.setdefault(
                (rec["alias"], canonical_json(rec["point"])), ident_of(rec, neutral)
            )
        flagged = {
            (
                group_of({"alias": f["alias"], "inputs": f["inputs"], "point": {}}, neutral),
                f["metric"],
            )
            if "inputs" in f
            else (f["group"], f["metric"])
            for f in exp.get("flagged", [])
            if f["verdict"] == REGRESSION
        }
        n = entry["night"]
        for (g, m), vals in samples(recs, neutral).items():
            if (g, m) not in out or (g, m) in done:
                continue
            b = out[(g, m)]
            acc = next((a for a in accepts if a.covering(experiment, g, m, n)), None)
            if (g, m) in flagged and acc is None:
                b.excluded.append(n)
                continue
            b.nights.append(PastNight(n, (entry.get("git") or {}).get("commit"), vals))
            if acc is not None and acc.night == n:
                b.accepted_at = n
                done.add((g, m))
            elif len(b.nights) >= k_for(m):
                done.add((g, m))
    for rec in current:
        g = group_of(rec, neutral)
        past = by_point.get((rec["alias"], canonical_json(rec["point"])))
        if past is None:
            continue
        mine = ident_of(rec, neutral)
        if past == mine:
            continue
        change = _input_change(past["inputs"], mine["inputs"])
        for (g2, _m), b in out.items():
            if g2 == g and not b.nights and not b.reset:
                b.reset = (
                    f"baseline reset because input {change} since the last night that ran "
                    "this point (list it in the suite's neutral_inputs if it does not affect "
                    "the measurement)"
                )
    return out
