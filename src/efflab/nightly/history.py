"""Nightly baseline history: which run records formed each past night, and pooling them.

`results/nightly/history.jsonl` has one JSON line per night:

    {"night": 7, "run_id": "...", "started": "...", "ended": "...", "suite": "...",
     "git": {"commit", "dirty"}, "exit_code": 0|1,
     "experiments": {"<exp>": {"version": 12, "keys": ["<record key>", ...],
                               "workload": {"quick", "repetitions", "overrides"},
                               "failures": [...], "flagged": [{point, group, metric,
                                                              verdict, change}]}}}

The night's record keys (not its table) are the baseline: the U test needs the
repetitions, which a table has already aggregated away. Records are matched across
nights by `group_of` (script + resolved inputs), not by point parameters alone: a
night that ran another workload (another input, a changed default) is not comparable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from efflab.core.layout import history_file
from efflab.core.specio import atomic_write_text, canonical_json
from efflab.results import records

SCAN_FACTOR = 10  # a baseline of K nights is looked for in the last 10*K nights


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in point.items()) or "(single point)"


def read_history(repo: Path) -> list[dict[str, Any]]:
    f = history_file(repo)
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def append_history(repo: Path, entry: dict[str, Any]) -> None:
    """Rewrite the whole file atomically: a crash never leaves half a line behind."""
    f = history_file(repo)
    old = f.read_text() if f.exists() else ""
    atomic_write_text(f, old + json.dumps(entry, sort_keys=True, default=str) + "\n")


def group_of(rec: dict[str, Any]) -> str:
    """Comparability key: same script, same resolved inputs (repetition aside)."""
    ident = {"alias": rec["alias"], "inputs": rec.get("inputs", rec["point"])}
    return hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:16]


def samples(recs: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[float]]:
    """(group, metric) -> values over the repetitions of one night."""
    out: dict[tuple[str, str], list[float]] = {}
    for rec in recs:
        if rec.get("status") != "ok":
            continue
        g = group_of(rec)
        for m, v in rec["metrics"].items():
            out.setdefault((g, m), []).append(float(v["value"]))
    return out


def load_night_records(repo: Path, experiment: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    d = records.runs_dir(repo, experiment)
    out = []
    for k in keys:
        f = d / f"{k}.json"
        if f.exists():
            out.append(json.loads(f.read_text()))
    return out


def baseline_nights(
    repo: Path, history: list[dict[str, Any]], experiment: str, groups: set[str], k: int
) -> dict[str, list[dict[tuple[str, str], list[float]]]]:
    """group -> per-night samples (newest first) from up to `k` past nights that ran it."""
    found: dict[str, list[dict[tuple[str, str], list[float]]]] = {g: [] for g in groups}
    for entry in reversed(history[-SCAN_FACTOR * k :]):
        if all(len(v) >= k for v in found.values()):
            break
        exp = entry.get("experiments", {}).get(experiment)
        if not exp or not exp.get("keys"):
            continue
        night = samples(load_night_records(repo, experiment, exp["keys"]))
        per_group: dict[str, dict[tuple[str, str], list[float]]] = {}
        for (g, m), vals in night.items():
            if g in found and len(found[g]) < k:
                per_group.setdefault(g, {})[(g, m)] = vals
        for g, s in per_group.items():
            found[g].append(s)
    return found
