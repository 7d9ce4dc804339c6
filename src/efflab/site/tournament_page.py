"""The tournament page: the leaderboard (from the verified ledger, through
`efflab.tournaments.leaderboard.build`), its Pareto front as an interactive scatter
with the constraints drawn, ties marked, and each row linking to its ledger entry and
verification record on the tournament's ledger page.

A ledger whose chain does not verify is not shown as a board: it is skipped and named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.site.experiments import Skipped
from efflab.site.html import Page, esc, fmt, slug, table
from efflab.tournaments import leaderboard
from efflab.tournaments.ledger import LedgerTampered, verify
from efflab.tournaments.spec import Tournament, load_tournament, tournament_ids


@dataclass
class Board:
    t: Tournament
    board: dict[str, Any]
    entries: list[dict[str, Any]]  # the ledger, verified
    verifications: dict[int, dict[str, Any]]  # seq -> stored verification.json


def load_boards(repo: Path, skipped: list[Skipped]) -> list[Board]:
    out = []
    for tid in tournament_ids(repo):
        try:
            t = load_tournament(repo, tid)
        except BadInput as exc:
            skipped.append(Skipped(str(exc.file), f"tournament spec: {exc}"))
            continue
        ledger = t.root(repo) / "ledger.jsonl"
        if not ledger.is_file():
            continue
        try:
            b = leaderboard.build(repo, t)
        except LedgerTampered as exc:
            skipped.append(Skipped(str(ledger), f"ledger does not verify: {exc}"))
            continue
        entries = verify(ledger).entries
        ver: dict[int, dict[str, Any]] = {}
        for e in entries:
            sid = (e.get("submission") or {}).get("id")
            f = t.root(repo) / "submissions" / str(sid) / "verification.json"
            if sid is not None and f.is_file():
                try:
                    ver[e["seq"]] = json.loads(f.read_text())
                except (OSError, ValueError):
                    skipped.append(Skipped(str(f), "verification record unreadable"))
        out.append(Board(t, b, entries, ver))
    return out


def ties(b: dict[str, Any]) -> set[int]:
    """Seqs of ranked entries whose objective values equal another entry's exactly."""
    objs = [o["metric"] for o in b["objectives"]]
    seen: dict[tuple, list[int]] = {}
    for r in b["entries"]:
        seen.setdefault(tuple(r["metrics"].get(m) for m in objs), []).append(r["seq"])
    return {s for group in seen.values() if len(group) > 1 for s in group}


def axes(b: dict[str, Any]) -> tuple[str, str | None]:
    objs = [o["metric"] for o in b["objectives"]]
    if len(objs) > 1:
        return objs[0], objs[1]
    others = [m for m in b["metrics"] if m != objs[0]]
    return objs[0], (others[0] if others else None)


def board_pages(bd: Board) -> list[Page]:
    b, t = bd.board, bd.t
    tid = slug(t.id)
    tied = ties(b)
    x, y = axes(b)
    head = ["#", "participant", "entry", "front", *[f"{m} [{b['units'][m]}]" for m in b["metrics"]]]
    head += ["flags", "submitted", "ledger", "verification"]
    rows = []
    for r in b["entries"]:
        mark = " <span class='tie'>tie</span>" if r["seq"] in tied else ""
        cells = [
            f"{r['position']}{mark}",
            esc(r["participant"])
            + (" <span class='baseline'>baseline</span>" if r.get("baseline") else ""),  # fmt: skip
            esc(r["entry"]),
            str(r["front"]),
            *[esc(fmt(r["metrics"].get(m))) for m in b["metrics"]],
            esc("; ".join(r["flags"])),
            esc(str(r["time"])[:16]),
            f"<a href='{tid}/ledger.html#entry-{r['seq']}'>entry {r['seq']}</a>",
            f"<a href='{tid}/ledger.html#verification-{r['seq']}'>record</a>",
        ]
        rows.append(cells)
    data = {
        "kind": "tournament",
        "x": x,
        "y": y,
        "units": b["units"],
        "objectives": b["objectives"],
        "constraints": [
            {"metric": c.metric, "op": c.op, "value": c.value, "text": c.text()}
            for c in t.constraints
        ],
        "entries": [
            {
                "seq": r["seq"],
                "label": f"#{r['position']} {r['participant']}/{r['entry']}",
                "front": r["front"],
                "x": r["metrics"].get(x),
                "y": r["metrics"].get(y) if y else r["position"],
                "tie": r["seq"] in tied,
            }
            for r in b["entries"]
        ],
    }
    rejected = table(
        ["seq", "participant", "entry", "stage", "reason"],
        [
            [
                f"<a href='{tid}/ledger.html#entry-{r['seq']}'>{r['seq']}</a>",
                esc(r["participant"]),
                esc(r["entry"]),
                esc(r["stage"]),
                esc(r["reason"]),
            ]
            for r in b["rejected"]
        ],
    )
    body = (
        f"<p>Tournament <code>{esc(t.id)}</code> ({esc(b['status'])}). Ranking: "
        f"{esc(b['rule'])}. Constraints: {esc(', '.join(b['constraints']) or 'none')}. "
        f"Every number was measured by efflab ({esc(b['verification']['aggregate'])} of "
        f"{b['verification']['repetitions']} repetitions); claims are only flagged.</p>"
        "<div class='plot' data-kind='pareto'></div>"
        f"<h2>Leaderboard</h2>{table(head, rows) if rows else '<p>No accepted entries.</p>'}"
        + (f"<h2>Rejected</h2>{rejected}" if b["rejected"] else "")
        + f"<p>Ledger: {b['ledger']['entries']} entries, chain verified, head "
        f"<code>{esc(b['ledger']['head'])}</code> · <a href='{tid}/ledger.html'>full ledger</a></p>"
    )
    return [
        Page(f"tournaments/{tid}.html", b["title"], body, data, plots=True),
        _ledger_page(bd),
    ]


def _ledger_page(bd: Board) -> Page:
    tid = slug(bd.t.id)
    parts = [f"<p><a href='../{tid}.html'>← leaderboard</a></p>"]
    for e in bd.entries:
        sub = e.get("submission") or {}
        seq = e["seq"]
        ver = bd.verifications.get(seq)
        what = (
            f"{esc(sub.get('participant'))}/{esc(sub.get('entry'))} — {esc(e.get('verdict'))}"
            if sub
            else f"{esc(e.get('kind'))} {esc(e.get('participant') or e.get('fingerprint'))}"
        )  # attempts, or the genesis / a key registered or revoked by the organiser
        parts.append(
            f"<section id='entry-{seq}' class='ledger'><h3>entry {seq}: {what}</h3>"
            f"<p>time {esc(e.get('time'))} · hash <code>{esc(e.get('hash'))}</code> · prev "
            f"<code>{esc(str(e.get('prev'))[:16])}…</code></p>"
            f"<details open><summary>ledger entry</summary><pre>"
            f"{esc(json.dumps(e, indent=2, sort_keys=True, default=str))}</pre></details>"
            f"<div id='verification-{seq}'><b>verification record</b>: "
            + (
                f"<pre>{esc(json.dumps(ver, indent=2, sort_keys=True, default=str))}</pre>"
                if ver is not None
                else "<i>no stored verification.json for this submission; the ledger entry's "
                "<code>verification</code> block above is the record</i>"
            )
            + "</div></section>"
        )
    return Page(f"tournaments/{tid}/ledger.html", f"{bd.t.id}: ledger", "".join(parts))


def leaders(bd: Board) -> dict[str, Any]:
    top = bd.board["entries"][:1]
    return {
        "id": bd.t.id,
        "title": bd.board["title"],
        "ranked": len(bd.board["entries"]),
        "rejected": len(bd.board["rejected"]),
        "leader": f"{top[0]['participant']}/{top[0]['entry']}" if top else None,
    }
