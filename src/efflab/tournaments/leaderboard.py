"""Leaderboards: the ledger's accepted verdicts, ranked (Pareto front or weighted).

Why from the ledger: it is the tamper-evident record of what the verifier measured.
The leaderboard reads only verified ledger entries (a broken chain is an error, not a
silently wrong board) and only measured metrics; claimed numbers appear as flags.

Ranking, documented once here and printed on every board:
- constraints were checked at verification: a violating submission is rejected and
  never ranked;
- one row per (participant, entry): its latest accepted submission; in a keyed
  tournament only a submission verified with the row's key replaces it;
- entries scored under an older spec (another `scoring_sha256`) are listed as stale,
  never ranked with current ones (`efflab tournament reverify` measures them again);
- each objective carries an interval from its repetitions; each row a rank range
  (efflab.tournaments.rank_ranges): rows whose ranges overlap are marked as statistical
  ties rather than ordered by noise;
- every attempt (accepted, rejected, infrastructure-error) is counted per participant,
  so a best-of-many is visible;
- pareto: non-dominated sorting into fronts (front 1 = the Pareto front: no other
  entry is at least as good on every objective and better on one); within a front,
  entries are ordered by the tie-break objectives in order (best first), then by the
  earlier submission (lower ledger seq);
- weighted: each objective is min-max normalised over the ranked entries (best = 1,
  worst = 0; all equal = 1) and combined with the spec's weights; higher score first,
  then the same tie-break. Fronts are still computed (for the plot).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from efflab.tournaments.attempts import ACCEPTED, is_stale
from efflab.tournaments.baseline import is_baseline
from efflab.tournaments.ledger import Ledger, attempts_only
from efflab.tournaments.proof import prove
from efflab.tournaments.rank_ranges import rank_ranges, tie_groups
from efflab.tournaments.spec import Objective, Tournament


@dataclass
class Row:
    seq: int
    submission: str
    participant: str
    entry: str
    time: str
    metrics: dict[str, float]
    inputs: dict[str, Any]
    flags: list[str]
    script: bool
    front: int = 0
    position: int = 0
    score: float | None = None
    key: str | None = None
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    rank_range: tuple[int, int] = (0, 0)
    tied_with: list[str] = field(default_factory=list)
    baseline: bool = False  # the organiser's baseline (`efflab tournament baseline`)


def dominates(a: dict[str, float], b: dict[str, float], objectives: list[Objective]) -> bool:
    """a is at least as good as b on every objective and strictly better on one."""
    ge = all(o.sign * a[o.metric] >= o.sign * b[o.metric] for o in objectives)
    gt = any(o.sign * a[o.metric] > o.sign * b[o.metric] for o in objectives)
    return ge and gt


def pareto_fronts(points: list[dict[str, float]], objectives: list[Objective]) -> list[int]:
    """Front number (1 = non-dominated) of each point, by repeated peeling."""
    front = [0] * len(points)
    left = set(range(len(points)))
    k = 0
    while left:
        k += 1
        layer = {
            i for i in left if not any(dominates(points[j], points[i], objectives) for j in left)
        }
        for i in layer:
            front[i] = k
        left -= layer
    return front


def weighted_scores(
    points: list[dict[str, float]], objectives: list[Objective], weights: dict[str, float]
) -> list[float]:
    """Weighted mean of min-max normalised objectives (1 = best of the field)."""
    total = sum(weights[o.metric] for o in objectives)
    scores = [0.0] * len(points)
    for o in objectives:
        vals = [o.sign * p[o.metric] for p in points]
        lo, hi = min(vals), max(vals)
        for i, v in enumerate(vals):
            norm = 1.0 if hi == lo else (v - lo) / (hi - lo)
            scores[i] += weights[o.metric] * norm / total
    return scores


def rank(t: Tournament, rows: list[Row]) -> list[Row]:
    """Rows ordered and numbered per the tournament's ranking (see module docstring)."""
    by_metric = {o.metric: o for o in t.objectives}
    pts = [r.metrics for r in rows]
    for r, f in zip(rows, pareto_fronts(pts, t.objectives), strict=True):
        r.front = f
    tie = [by_metric[m] for m in t.tie_break]

    def tie_key(r: Row) -> tuple[float, ...]:
        return tuple(-o.sign * r.metrics[o.metric] for o in tie) + (r.seq,)

    if t.ranking == "weighted":
        for r, s in zip(rows, weighted_scores(pts, t.objectives, t.weights), strict=True):
            r.score = s
        ordered = sorted(rows, key=lambda r: (-(r.score or 0.0), *tie_key(r)))
    else:
        ordered = sorted(rows, key=lambda r: (r.front, *tie_key(r)))
    for i, r in enumerate(ordered, 1):
        r.position = i
    return ordered


def ranking_rule(t: Tournament) -> str:
    tie = ", ".join(f"{m} ({t.better(m)} is better)" for m in t.tie_break)
    if t.ranking == "weighted":
        w = ", ".join(f"{m}×{t.weights[m]:g}" for m in t.weights)
        return (
            f"weighted score of min-max normalised objectives ({w}); ties by {tie}, "
            "then the earlier submission"
        )
    return f"Pareto front first, then later fronts; within a front by {tie}, then the earlier submission"


def _row(e: dict[str, Any]) -> Row:
    sub = e["submission"]
    return Row(
        seq=e["seq"],
        submission=sub["id"],
        participant=sub["participant"],
        entry=sub["entry"],
        time=e["time"],
        metrics=e["metrics"],
        inputs=sub.get("inputs") or {},
        flags=e.get("flags") or [],
        script=bool(sub.get("archive")),
        key=sub.get("key"),
        intervals=e.get("intervals") or {},
        baseline=is_baseline(sub["participant"], sub["entry"]),
    )


def with_rank_ranges(t: Tournament, ranked: list[Row]) -> list[Row]:
    """Fill each row's rank range and its statistical ties (see the module docstring)."""
    if not ranked:
        return ranked

    def order(points: list[dict[str, float]]) -> list[int]:
        tmp = [dataclasses.replace(r, metrics=p) for r, p in zip(ranked, points, strict=True)]
        idx = {id(x): i for i, x in enumerate(tmp)}
        return [idx[id(x)] for x in rank(t, tmp)]

    def bounds(r: Row) -> dict[str, tuple[float, float]]:
        return {m: (iv["lo"], iv["hi"]) for m, iv in r.intervals.items()}

    signs = {o.metric: o.sign for o in t.objectives}
    ranges = rank_ranges(ranked, lambda r: r.metrics, bounds, signs, order)
    for r, rr, ties in zip(ranked, ranges, tie_groups(ranges), strict=True):
        r.rank_range = rr
        r.tied_with = [f"{ranked[j].participant}/{ranked[j].entry}" for j in ties]
    return ranked


def build(repo: Path, t: Tournament) -> dict[str, Any]:
    """The leaderboard as data (raises LedgerTampered when the ledger doesn't verify)."""
    entries = Ledger(t.root(repo) / "ledger.jsonl").entries()
    # a line the ledger cannot attribute (no organiser signature, an unregistered or
    # unverified key, no digests, metrics not its repetitions') is listed, never ranked
    proof = prove(repo, t)
    unproven = {p.seq: p.reason for p in proof.problems}
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    rejected, refused = [], []
    per_participant: dict[str, dict[str, int]] = {}
    for e in attempts_only(entries):
        sub = e["submission"]
        if e["seq"] in unproven:
            refused.append({"seq": e["seq"], "row": f"{sub.get('participant')}/{sub.get('entry')}", "reason": f"does not verify: {unproven[e['seq']]}"})  # fmt: skip
            continue
        who = str(sub.get("participant"))
        c = per_participant.setdefault(who, {"attempts": 0, "accepted": 0, "rejected": 0, "infrastructure-error": 0})  # fmt: skip
        if e.get("reverify_of") is None and e.get("retry_of") is None:
            c["attempts"] += 1
        c[e["verdict"]] = c.get(e["verdict"], 0) + 1
        if e["verdict"] != ACCEPTED:
            rejected.append(
                {
                    "seq": e["seq"],
                    "submission": sub["id"],
                    "participant": sub.get("participant"),
                    "entry": sub.get("entry"),
                    "time": e["time"],
                    "verdict": e["verdict"],
                    "stage": e.get("stage"),
                    "reason": e.get("reason"),
                }
            )
            continue
        k = (sub["participant"], sub["entry"])
        held = latest.get(k)
        if t.identity == "keys" and held and held["submission"].get("key") != sub.get("key"):
            refused.append({"seq": e["seq"], "row": f"{k[0]}/{k[1]}", "reason": "signed with another key than the row's"})  # fmt: skip
            continue
        latest[k] = e
    current = [e for e in latest.values() if not is_stale(e, t)]
    current = [e for e in current if all(o.metric in e["metrics"] for o in t.objectives)]
    stale = [
        {"seq": e["seq"], "participant": e["submission"]["participant"], "entry": e["submission"]["entry"],  # fmt: skip
         "time": e["time"], "metrics": e["metrics"], "scoring_sha256": e.get("scoring_sha256")}
        for e in latest.values() if is_stale(e, t)
    ]  # fmt: skip
    ranked = with_rank_ranges(t, rank(t, [_row(e) for e in current]))
    shown = [m for m in [*(o.metric for o in t.objectives), *(c.metric for c in t.constraints)]]
    return {
        "tournament": t.id,
        "title": t.title,
        "status": t.status(),
        "ranking": t.ranking,
        "rule": ranking_rule(t),
        "identity": t.identity,
        "scoring_sha256": t.scoring_sha256,
        "objectives": [asdict(o) for o in t.objectives],
        "constraints": [c.text() for c in t.constraints],
        "metrics": list(dict.fromkeys(shown)),
        "units": {m: t.unit(m) for m in shown},
        "verification": {
            "repetitions": t.repetitions,
            "aggregate": t.aggregate,
            "confidence": t.confidence,
        },  # fmt: skip
        "entries": [asdict(r) for r in ranked],
        "stale": stale,
        "refused": refused,
        "attempts": per_participant,
        "rejected": rejected,
        "ledger": {
            "entries": len(entries),
            "head": entries[-1]["hash"] if entries else None,
            "head_sig": entries[-1].get("head_sig") if entries else None,
            "organiser_key": proof.organiser,
        },
    }
