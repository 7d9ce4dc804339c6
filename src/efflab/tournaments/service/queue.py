"""The service's durable queue: one SQLite database (WAL) under results/tournaments/.

Why SQLite written by hand rather than a task queue library: the queue *is* the
service's state machine — an upload's status, its attempts and their ledger lines, the
lease a remote worker holds over HTTP, nonces already used, the organiser's window
override — and it must survive kill -9 with nothing else installed. Celery and RQ need
a broker; Huey's SQLite storage has no leases (a vanished worker's task is never given
back); persist-queue's ack queue has no per-item lease time. A table with a lease
column and transactions (`BEGIN IMMEDIATE`) is the whole mechanism.

A job's life: queued → running (a lease: owner, deadline; `attempt` counts runs) →
accepted | rejected | infrastructure-error (final: retries used up) — or back to queued
when its lease expires (a worker died) or the verifier broke and retries are left.
Exactly one ledger line per attempt: each run has an attempt id (`<job>`,
`<job>-r1`, …) that becomes the ledger entry's submission id, and a job claimed again
is first looked up in the ledger (efflab.tournaments.service.app), so a run whose line
was written before a crash is never run twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUED, RUNNING = "queued", "running"
FINAL = ("accepted", "rejected", "infrastructure-error")
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    tournament TEXT NOT NULL,
    participant TEXT,
    entry TEXT,
    state TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'submission',
    runs INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    signature TEXT,
    signed TEXT,
    sub_sha256 TEXT,
    archive_sha256 TEXT,
    has_archive INTEGER NOT NULL DEFAULT 0,
    key TEXT,
    seqs TEXT NOT NULL DEFAULT '[]',
    verdict TEXT,
    reason TEXT,
    worker TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created);
CREATE TABLE IF NOT EXISTS nonces (nonce TEXT PRIMARY KEY, participant TEXT, seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS windows (tournament TEXT PRIMARY KEY, state TEXT NOT NULL, changed REAL NOT NULL);
"""


@dataclass
class Job:
    id: str
    tournament: str
    participant: str | None
    entry: str | None
    state: str
    kind: str
    runs: int
    retries: int
    lease_owner: str | None
    lease_until: float | None
    created: float
    updated: float
    signature: str | None
    signed: dict[str, Any] | None
    sub_sha256: str | None
    archive_sha256: str | None
    has_archive: bool
    key: str | None
    seqs: list[int]
    verdict: str | None
    reason: str | None
    worker: dict[str, Any] | None

    @property
    def attempt_id(self) -> str:
        """The ledger's submission id of this job's current run."""
        return self.id if self.retries == 0 else f"{self.id}-r{self.retries}"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tournament": self.tournament,
            "participant": self.participant,
            "entry": self.entry,
            "status": self.state,
            "runs": self.runs,
            "retries": self.retries,
            "ledger_seqs": self.seqs,
            "reason": self.reason,
            "worker": self.worker,
            "created": self.created,
            "updated": self.updated,
        }


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["signed"] = json.loads(d["signed"]) if d["signed"] else None
    d["seqs"] = json.loads(d["seqs"])
    d["worker"] = json.loads(d["worker"]) if d["worker"] else None
    d["has_archive"] = bool(d["has_archive"])
    return Job(**d)


class QueueFull(Exception):
    """The global queue cap is reached: answered 503 with Retry-After."""


class OverLimit(Exception):
    """The participant's attempts (in the ledger and waiting here) reach their limit."""


class Queue:
    """The queue database; every method opens its own short transaction."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a 202 means the row is on disk
            db.execute("PRAGMA busy_timeout=30000")
            if write:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            else:
                yield db
        finally:
            db.close()

    def add(self, job: dict[str, Any], cap: int, used: int = 0, limit: int | None = None) -> int:
        """Insert a queued job unless `cap` jobs wait already, or the participant's `used`
        ledger attempts plus their waiting jobs reach `limit` (one transaction, so a burst
        of uploads cannot all pass); its position (1 = next)."""
        now = time.time()
        with self._db(write=True) as db:
            (waiting,) = db.execute("SELECT count(*) FROM jobs WHERE state IN ('queued','running')").fetchone()  # fmt: skip
            if waiting >= cap:
                raise QueueFull(f"{waiting} submissions wait already (the cap is {cap})")
            if limit is not None:
                (mine,) = db.execute(
                    "SELECT count(*) FROM jobs WHERE tournament=? AND participant=? AND kind='submission'"
                    " AND state IN ('queued','running')",
                    (job["tournament"], job.get("participant")),
                ).fetchone()
                if used + mine >= limit:
                    raise OverLimit(f"'{job.get('participant')}' has {used} attempts on record and {mine} waiting; the limit is {limit}")  # fmt: skip
            db.execute(
                "INSERT INTO jobs (id, tournament, participant, entry, state, kind, created, updated,"
                " signature, signed, sub_sha256, archive_sha256, has_archive, key)"
                " VALUES (?,?,?,?,'queued',?,?,?,?,?,?,?,?,?)",
                (
                    job["id"], job["tournament"], job.get("participant"), job.get("entry"),
                    job.get("kind", "submission"), now, now, job.get("signature"),
                    json.dumps(job["signed"]) if job.get("signed") else None,
                    job.get("sub_sha256"), job.get("archive_sha256"),
                    int(bool(job.get("has_archive"))), job.get("key"),
                ),
            )  # fmt: skip
            return self._position(db, job["id"])

    @staticmethod
    def _position(db: sqlite3.Connection, jid: str) -> int:
        row = db.execute("SELECT created, state FROM jobs WHERE id=?", (jid,)).fetchone()
        if row is None or row["state"] != QUEUED:
            return 0
        (ahead,) = db.execute(
            "SELECT count(*) FROM jobs WHERE state='queued' AND (created < ? OR (created = ? AND id < ?))",  # fmt: skip
            (row["created"], row["created"], jid),
        ).fetchone()
        return int(ahead) + 1

    def position(self, jid: str) -> int:
        with self._db() as db:
            return self._position(db, jid)

    def get(self, jid: str) -> Job | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id=?", (jid,)).fetchone()
            return _job(row) if row else None

    def active(self, tournament: str, participant: str) -> int:
        """Jobs of this participant not yet decided (they count toward the attempt limit)."""
        with self._db() as db:
            (n,) = db.execute(
                "SELECT count(*) FROM jobs WHERE tournament=? AND participant=? AND kind='submission'"
                " AND state IN ('queued','running')",
                (tournament, participant),
            ).fetchone()
            return int(n)

    def counts(self) -> dict[str, int]:
        with self._db() as db:
            return {r[0]: r[1] for r in db.execute("SELECT state, count(*) FROM jobs GROUP BY state")}  # fmt: skip

    def claim(self, owner: str, lease_s: float, tournaments: list[str] | None = None) -> Job | None:
        """The oldest queued job (or one whose lease expired), leased to `owner`."""
        now = time.time()
        where = "(state='queued' OR (state='running' AND lease_until < ?))"
        args: list[Any] = [now]
        if tournaments is not None:
            where += f" AND tournament IN ({','.join('?' * len(tournaments))})"
            args += tournaments
        with self._db(write=True) as db:
            row = db.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY created, id LIMIT 1", args).fetchone()  # noqa: S608 - placeholders only  # fmt: skip
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state='running', lease_owner=?, lease_until=?, runs=runs+1, updated=? WHERE id=?",  # fmt: skip
                (owner, now + lease_s, now, row["id"]),
            )
            return _job(db.execute("SELECT * FROM jobs WHERE id=?", (row["id"],)).fetchone())

    def heartbeat(self, jid: str, owner: str, lease_s: float) -> bool:
        """Extend the lease; False when the job is no longer this owner's."""
        now = time.time()
        with self._db(write=True) as db:
            cur = db.execute(
                "UPDATE jobs SET lease_until=?, updated=? WHERE id=? AND state='running' AND lease_owner=?",  # fmt: skip
                (now + lease_s, now, jid, owner),
            )
            return cur.rowcount == 1

    def record(self, jid: str, seq: int | None, verdict: str, reason: str | None, worker: dict[str, Any] | None, retry: bool) -> Job:  # fmt: skip
        """A run's ledger line is written: final, or queued again for an infrastructure retry."""
        now = time.time()
        with self._db(write=True) as db:
            job = _job(db.execute("SELECT * FROM jobs WHERE id=?", (jid,)).fetchone())
            seqs = [*job.seqs, seq] if seq is not None and seq not in job.seqs else job.seqs
            if retry:
                db.execute(
                    "UPDATE jobs SET state='queued', retries=retries+1, lease_owner=NULL, lease_until=NULL,"
                    " seqs=?, verdict=?, reason=?, worker=?, updated=? WHERE id=?",
                    (json.dumps(seqs), verdict, reason, json.dumps(worker) if worker else None, now, jid),
                )  # fmt: skip
            else:
                db.execute(
                    "UPDATE jobs SET state=?, lease_owner=NULL, lease_until=NULL, seqs=?, verdict=?,"
                    " reason=?, worker=?, updated=? WHERE id=?",
                    (verdict, json.dumps(seqs), verdict, reason, json.dumps(worker) if worker else None, now, jid),
                )  # fmt: skip
            return _job(db.execute("SELECT * FROM jobs WHERE id=?", (jid,)).fetchone())

    def release(self, jid: str, owner: str, reason: str) -> None:
        """Give a leased job back untouched (the worker could not start it)."""
        with self._db(write=True) as db:
            db.execute(
                "UPDATE jobs SET state='queued', lease_owner=NULL, lease_until=NULL, runs=max(runs-1,0),"
                " reason=?, updated=? WHERE id=? AND state='running' AND lease_owner=?",
                (reason, time.time(), jid, owner),
            )  # fmt: skip

    def requeue_owned(self, prefix: str) -> int:
        """Jobs leased to workers whose owner id starts with `prefix` (dead ones) go back."""
        with self._db(write=True) as db:
            cur = db.execute(
                "UPDATE jobs SET state='queued', lease_owner=NULL, lease_until=NULL, updated=?"
                " WHERE state='running' AND lease_owner LIKE ?",
                (time.time(), prefix.replace("%", "") + "%"),
            )
            return cur.rowcount

    def use_nonce(self, nonce: str, participant: str, keep_s: float) -> bool:
        """Record a nonce; False when it was used before (a replay)."""
        now = time.time()
        with self._db(write=True) as db:
            db.execute("DELETE FROM nonces WHERE seen < ?", (now - keep_s,))
            try:
                db.execute("INSERT INTO nonces VALUES (?,?,?)", (nonce, participant, now))
            except sqlite3.IntegrityError:
                return False
            return True

    def window(self, tournament: str) -> str | None:
        with self._db() as db:
            row = db.execute("SELECT state FROM windows WHERE tournament=?", (tournament,)).fetchone()  # fmt: skip
            return row["state"] if row else None

    def set_window(self, tournament: str, state: str | None) -> None:
        with self._db(write=True) as db:
            if state is None:
                db.execute("DELETE FROM windows WHERE tournament=?", (tournament,))
            else:
                db.execute("INSERT OR REPLACE INTO windows VALUES (?,?,?)", (tournament, state, time.time()))  # fmt: skip

    def ids(self) -> set[str]:
        with self._db() as db:
            return {r[0] for r in db.execute("SELECT id FROM jobs")}
