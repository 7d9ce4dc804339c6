"""Tamper-evident, append-only ledger of tournament verdicts (one JSON object per line).

Why a hash chain: the leaderboard is computed from the ledger, so an edit to any past
verdict (a better number, a deleted rejection, a reordered line) must be detectable.
Each entry carries `prev` (the previous entry's hash; GENESIS for the first), `seq`
(its 0-based line number) and `hash` = sha256 of its canonical JSON without `hash`.
Changing an entry breaks its own hash; recomputing that hash breaks the next entry's
`prev`; so only a rewrite of the whole tail goes unnoticed by the chain alone — which
is why entries also carry the digests of the stored submission files.

Appends take a file lock and re-verify the chain first: concurrent submitters never
interleave, and nothing is appended to a ledger that no longer verifies.

Who wrote a line is efflab.tournaments.organiser's and efflab.tournaments.proof's
business: a Ledger given the organiser's key opens an empty ledger with a genesis
entry naming that key and signs each new entry's hash (`head_sig`, outside the hash);
entries of `kind` register/revoke record participants' keys, entries without a kind
are attempts.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from efflab.core.clock import now_iso
from efflab.core.errors import RunFailed
from efflab.core.locks import FileLock
from efflab.core.specio import canonical_json
from efflab.tournaments.submission import sha256_file

if TYPE_CHECKING:
    from efflab.tournaments.organiser import Organiser

GENESIS = "0" * 64
LOCK_TIMEOUT_S = 600.0
UNHASHED = ("hash", "head_sig")  # the hash itself and the organiser's signature over it
ORGANISER, REGISTER, REVOKE = "organiser", "register", "revoke"


class LedgerTampered(Exception):
    """The chain does not verify; nothing more is appended until a person looks."""


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 over the canonical JSON of the entry without `hash` and `head_sig`."""
    body = {k: v for k, v in entry.items() if k not in UNHASHED}
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


@dataclass
class Verification:
    """The outcome of recomputing a ledger's chain."""

    path: Path
    entries: list[dict[str, Any]] = field(default_factory=list)
    first_bad: int | None = None  # 0-based line index of the first bad entry
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad is None

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger": str(self.path),
            "ok": self.ok,
            "entries": len(self.entries),
            "first_bad_line": None if self.first_bad is None else self.first_bad + 1,
            "first_bad_seq": self.first_bad,
            "reason": self.reason or None,
            "head": self.entries[-1]["hash"] if self.entries and self.ok else None,
        }


def verify(path: Path, expect_head: str | None = None) -> Verification:
    """Recompute the chain; stop at the first entry that doesn't verify.

    The chain alone cannot see entries cut off the end; `expect_head` (a head hash
    published earlier, e.g. printed by `efflab tournament verify-ledger`) can.
    """
    res = Verification(path)
    if not path.exists():
        if expect_head:
            res.first_bad, res.reason = 0, f"the ledger is missing; expected head {expect_head}"
        return res
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends with a newline, as every append leaves it
    prev = GENESIS
    for i, raw in enumerate(lines):
        why = _check_line(raw, i, prev)
        if why:
            res.first_bad, res.reason = i, why
            return res
        entry = json.loads(raw)
        res.entries.append(entry)
        prev = entry["hash"]
    if torn:
        res.first_bad = len(lines)
        res.reason = "the last line is incomplete (no newline): a torn or hand-made write"
    elif expect_head and expect_head not in {e["hash"] for e in res.entries}:
        res.first_bad = len(lines)
        res.reason = (
            f"the expected head {expect_head[:12]}… is not in the chain: entries were cut "
            "off the end, or the whole ledger was rewritten"
        )
    return res


def _check_line(raw: bytes, i: int, prev: str) -> str:
    """Why line i doesn't verify, or '' when it does."""
    try:
        entry = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"not valid JSON ({exc})"
    if not isinstance(entry, dict):
        return "not a JSON object"
    if not isinstance(entry.get("hash"), str) or not isinstance(entry.get("prev"), str):
        return "missing its `hash` or `prev` field"
    if entry.get("seq") != i:
        return f"seq is {entry.get('seq')!r} on line {i + 1}: a line was removed, added or moved"
    if entry["prev"] != prev:
        return (
            f"prev is {entry['prev'][:12]}… but the entry before hashes to {prev[:12]}…: "
            "an entry before it was removed, reordered or rewritten"
        )
    actual = entry_hash(entry)
    if actual != entry["hash"]:
        return (
            f"its content hashes to {actual[:12]}… but it records {entry['hash'][:12]}…: "
            "the entry was edited after it was written"
        )
    return ""


def is_attempt(e: dict[str, Any]) -> bool:
    """An attempt's line (not the genesis, a registration or a revocation)."""
    return e.get("kind") in (None, "submission") and isinstance(e.get("submission"), dict)


def attempts_only(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if is_attempt(e)]


class Ledger:
    """One tournament's ledger file; `append` is the only way to write it.

    With `organiser` (efflab.tournaments.organiser.for_ledger), appends are signed and an
    empty ledger starts with the genesis entry; without, the chain alone is written
    (and efflab.tournaments.proof refuses such lines).
    """

    def __init__(self, path: Path, organiser: Organiser | None = None, tournament: str = ""):
        self.path = path
        self.lock = FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT_S)
        self.organiser = organiser
        self.tournament = tournament or path.parent.name

    def verify(self, expect_head: str | None = None) -> Verification:
        """`verify` under the lock: never reads a line an append is still writing."""
        if not self.path.parent.is_dir():
            return verify(self.path, expect_head)
        with self.lock:
            return verify(self.path, expect_head)

    def entries(self) -> list[dict[str, Any]]:
        """Verified entries; raises LedgerTampered when the chain is broken."""
        v = self.verify()
        if not v.ok:
            raise LedgerTampered(_tampered_message(v))
        return v.entries

    def append(self, body: dict[str, Any]) -> dict[str, Any]:
        """Chain `body` after the current head (under the lock); returns the entry written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            v = verify(self.path)
            if not v.ok:
                raise LedgerTampered(_tampered_message(v))
            org = self.organiser
            if org is not None and not v.entries:
                genesis = {
                    "kind": ORGANISER,
                    "time": now_iso(),
                    "tournament": self.tournament,
                    "public_key": org.public_b64,
                    "fingerprint": org.fingerprint,
                }
                v.entries.append(self._write(genesis, v.entries))
            elif org is not None:
                first = v.entries[0]
                if first.get("kind") == ORGANISER and first.get("fingerprint") != org.fingerprint:
                    raise RunFailed(
                        f"{self.path}: this ledger is signed by organiser key "
                        f"{first.get('fingerprint')}, and this machine holds {org.fingerprint}: "
                        "only the organiser's machine appends to it; nothing was written"
                    )
            return self._write(body, v.entries)

    def _write(self, body: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
        prev = entries[-1]["hash"] if entries else GENESIS
        entry = {**body, "seq": len(entries), "prev": prev}
        entry["hash"] = entry_hash(entry)
        if self.organiser is not None:
            entry["head_sig"] = self.organiser.sign_head(entry["hash"])
        line = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:  # one write() of the whole line: readers see all of it or none
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry


def _tampered_message(v: Verification) -> str:
    assert v.first_bad is not None
    return f"{v.path}: entry {v.first_bad} (line {v.first_bad + 1}) does not verify: {v.reason}"


def stored_file_problems(root: Path, entries: list[dict[str, Any]]) -> list[str]:
    """Stored submission files that no longer match the digests their entry recorded."""
    bad = []
    for e in attempts_only(entries):
        sub = e["submission"]
        for name, digest in ((sub.get("file"), sub.get("sha256")),
                             (sub.get("archive"), sub.get("archive_sha256"))):  # fmt: skip
            if not name or not digest:
                continue
            f = root / name
            if not f.is_file():
                bad.append(f"entry {e['seq']}: stored {name} is missing")
            elif sha256_file(f) != digest:
                bad.append(f"entry {e['seq']}: stored {name} differs from its recorded sha256")
    return bad
