"""What the ledger says about attempts: the submission limit and stale entries.

Why: every attempt is a ledger line (accepted, rejected or `infrastructure-error`),
so the policies that keep noise from being farmed read the ledger, not a counter
that could drift from it:

- limit: at most `limit` attempts per participant per `window_h` hours (checked under
  the participant's lock, held until the attempt's line is written). Attempts are
  counted per identity that verified (in a keyed tournament, unsigned or badly signed
  lines do not count, so nobody can use up someone else's quota by forging their
  name); `infrastructure-error` lines never count (the verifier's fault);
  re-verifications by the organiser never count.
- stale: an entry scored under another `scoring_sha256` than the spec's current one
  (see efflab.tournaments.spec.SCORING_FIELDS) was measured under other rules; the
  leaderboard lists it apart, never ranked with current ones, until
  `efflab tournament reverify` measures it again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from efflab.core.locks import FileLock
from efflab.tournaments.spec import Tournament

ACCEPTED, REJECTED, INFRA = "accepted", "rejected", "infrastructure-error"


def counts_toward_limit(e: dict[str, Any], t: Tournament) -> bool:
    if e.get("verdict") == INFRA or e.get("reverify_of") is not None:
        return False
    if t.identity == "keys" and not (e.get("submission") or {}).get("key"):
        return False  # identity never established: not this participant's attempt
    return True


def attempts_in_window(
    entries: list[dict[str, Any]], t: Tournament, participant: str, now: datetime
) -> list[dict[str, Any]]:
    since = now - timedelta(hours=t.window_h)
    out = []
    for e in entries:
        if (e.get("submission") or {}).get("participant") != participant:
            continue
        if not counts_toward_limit(e, t):
            continue
        when = datetime.fromisoformat(e["time"])
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        if when >= since:
            out.append(e)
    return out


def participant_lock(root: Path, participant: str) -> FileLock:
    """Held from the limit check until the attempt's ledger line is written: attempts of
    one participant are counted one after another (a burst waits, then sees the lines).
    `participant` passed the submission schema's name pattern (a safe file name)."""
    return FileLock(root / "locks" / f"{participant}.lock", f"attempt of {participant}")


def limit_reason(entries: list[dict[str, Any]], t: Tournament, participant: str, now: datetime) -> str:  # fmt: skip
    """Why this attempt is over the limit, or '' when it may run."""
    used = attempts_in_window(entries, t, participant, now)
    if len(used) < t.limit:
        return ""
    first = min(datetime.fromisoformat(e["time"]) for e in used)
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    again = first + timedelta(hours=t.window_h)
    return (
        f"'{participant}' made {len(used)} attempts in the last {t.window_h:g} h (ledger "
        f"entries {', '.join(str(e['seq']) for e in used)}); the limit is {t.limit}: "
        f"submit again after {again:%Y-%m-%d %H:%M} UTC"
    )


def is_stale(e: dict[str, Any], t: Tournament) -> bool:
    return e.get("scoring_sha256") != t.scoring_sha256
