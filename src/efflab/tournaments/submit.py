"""One attempt, start to ledger line: intake, identity, limit, sealed verification.

Why one module owns the flow: "nothing a submission does leaves no line". Every way
an attempt can end once the verifier is known to work (the probe self-check passed)
appends exactly one ledger entry: `accepted`, `rejected` (with the stage: window,
schema, archive, identity, limit, plan, run, constraint) or `infrastructure-error`
(the runtime said the verifier broke; the entry's digests are on the line and the
submission waits in `queue/` for `efflab tournament retry`). Only a verifier that is
broken before anything starts (no engine, a failing self-check, a missing organiser
secret, a broken spec) raises instead — then nothing about the submission was read.

Untrusted input is read through efflab.tournaments.untrusted (no links followed,
inside the submission's folder, sizes checked before any copy); a rejected
submission's stored record holds our message, never the file's content.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from efflab.core.clock import now_iso
from efflab.core.errors import BadInput, RunFailed
from efflab.core.specio import atomic_write_json
from efflab.plan.registry import Registry
from efflab.runtime import base
from efflab.tournaments import attempts, identity, private, sandbox, untrusted
from efflab.tournaments.ledger import Ledger, attempts_only
from efflab.tournaments.organiser import tournament_ledger
from efflab.tournaments.spec import Tournament, load_tournament
from efflab.tournaments.submission import (
    Rejected,
    Submission,
    check_script_folder,
    load_submission,
    peek,
    safe_extract,
    sha256_file,
)
from efflab.tournaments.verification import (
    Measured,
    VerifierFailed,
    claim_flags,
    new_submission_id,
    plan_submission,
    run_sealed,
)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MAX_SIGNATURE_BYTES = 4096


@dataclass
class Verdict:
    """What an attempt came to, and the ledger entry that records it ({}: not recorded)."""

    accepted: bool
    entry: dict[str, Any]
    folder: Path
    reason: str = ""
    stage: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        return str(self.entry.get("verdict", attempts.REJECTED))

    @property
    def recorded(self) -> bool:
        """False for an answer that is no attempt (an unregistered participant)."""
        return bool(self.entry)


@dataclass
class Intake:
    """What was handed in, stored: digests for the ledger, paths for the run."""

    sub_sha256: str | None = None
    stored: Path | None = None
    packed: Path | None = None
    archive_sha256: str | None = None
    participant: str | None = None
    entry: str | None = None
    key: str | None = None  # fingerprint of the key that verified the signature
    signature: str | None = None  # the detached signature (base64), kept in the ledger ...
    signed: dict[str, Any] | None = None  # ... with what it signs (identity.signed_fields)
    # (signature, signed fields, registered public key or None): checked by the service
    presigned: tuple[str, dict[str, Any], str | None] | None = None


def sealed_settings(t: Tournament) -> dict[str, Any]:
    return {**t.limits, "own_files_only": True}


def preflight(repo: Path, t: Tournament) -> str | None:
    """Fail closed before reading anything: engine, probe self-check, organiser secret."""
    runtime = base.get("docker")
    if not runtime.seals or not runtime.available():
        raise RunFailed(
            "no Docker engine answers: submissions are verified only in sealed containers "
            "(start one with tools/ensure-docker.sh); nothing was recorded"
        )
    digest = private.secret_digest(t) if t.private else None
    sandbox.check(repo, t.env or "base", sealed_settings(t))
    return digest


def _safe_name(value: Any) -> str | None:
    return value if isinstance(value, str) and NAME.match(value) else None


def _intake(
    repo: Path,
    t: Tournament,
    file: Path,
    archive: Path | None,
    signature: Path | None,
    folder: Path,
    it: Intake,
) -> Submission:
    """Read, store and validate the submission (Rejected on the way); the Submission."""
    data = untrusted.read_submission_file(file)
    it.sub_sha256 = hashlib.sha256(data).hexdigest()
    it.stored = folder / "submission.yaml"
    it.stored.write_bytes(data)
    try:
        sub = load_submission(it.stored, t.id, t.inputs_schema, t.metrics)
    except Rejected as exc:
        known = peek(it.stored)  # names that match the schema's patterns, nothing else
        it.participant, it.entry = _safe_name(known.get("participant")), _safe_name(known.get("entry"))  # fmt: skip
        it.stored.unlink()  # the ledger keeps the digest and our message, not the bytes
        it.stored = None
        reason = _scrub(exc.reason).replace(str(folder / "submission.yaml"), str(file))
        raise Rejected(exc.stage, reason) from None
    it.participant, it.entry = _safe_name(sub.participant), _safe_name(sub.entry)
    if archive is not None or sub.archive:
        if t.script is None:
            raise Rejected("archive", "this tournament takes inputs only, no script archive")
        n, size = t.script.max_files, t.script.max_bytes
        u = (
            untrusted.read_path(archive, n, size)
            if archive is not None
            else untrusted.read_named(file.parent, sub.archive, n, size, f"{file}: $.archive")
        )
        blob = untrusted.archive_bytes(u)
        it.packed = folder / "script.tar.gz"
        it.packed.write_bytes(blob)
        it.archive_sha256 = hashlib.sha256(blob).hexdigest()
    elif t.script is not None and t.script.required:
        raise Rejected("archive", f"a script archive for step '{t.script.step}' is required")
    if t.identity == "keys":
        pub = None
        if it.presigned is not None:  # over the service: digests + nonce + time
            sig, fields, pub = it.presigned[0].encode(), it.presigned[1], it.presigned[2]
            want = (t.id, it.sub_sha256, it.archive_sha256)
            if (fields.get("tournament"), fields.get("submission_sha256"), fields.get("archive_sha256")) != want:  # fmt: skip
                raise Rejected("identity", "the signed digests are not those of the stored files")
        else:
            sig = _signature(file, signature, sub.signature)
            fields = identity.signed_fields(t.id, it.sub_sha256, it.archive_sha256)
        msg = identity.message_bytes(fields)
        if pub is not None:  # a remote worker: the service's registry named the key
            if not identity.verify_signature(pub, msg, sig):
                raise Rejected("identity", f"the signature does not verify with the key registered for '{sub.participant}'")  # fmt: skip
            it.key = identity.fingerprint(identity.parse_public(pub, "the registered key"))
        else:
            it.key = identity.Registry(participants_file(repo, t)).check(sub.participant, msg, sig).fingerprint  # fmt: skip
        it.signature, it.signed = (sig or b"").decode(errors="replace").strip(), fields
    return sub


def participants_file(repo: Path, t: Tournament) -> Path:
    return t.root(repo) / "participants.json"


def _scrub(reason: str) -> str:
    """A schema message without what was found (it could be a host file's content)."""
    return re.sub(r", found .*$", ", found something else", reason, flags=re.S)


def _signature(file: Path, given: Path | None, named: str | None) -> bytes | None:
    """The detached signature: --signature, the file's `signature:`, or FILE.sig if any."""
    name = named or f"{file.name}.sig"
    if given is None and named is None and not os.path.lexists(file.parent / name):
        return None  # unsigned
    try:
        if given is not None:
            return next(iter(untrusted.read_path(given, 1, MAX_SIGNATURE_BYTES).files.values()))
        u = untrusted.read_named(file.parent, name, 1, MAX_SIGNATURE_BYTES, f"{file}: signature {name}")  # fmt: skip
    except Rejected as exc:
        raise Rejected("identity", exc.reason) from None
    return next(iter(u.files.values()))


def _stored_sub(t: Tournament, folder: Path) -> Submission:
    return load_submission(folder / "submission.yaml", t.id, t.inputs_schema, t.metrics)


def _run(
    repo: Path,
    t: Tournament,
    sid: str,
    folder: Path,
    it: Intake,
    sub: Submission,
    digest: str | None,
    details: dict[str, Any],
    on_progress: Callable[[int, int], None] | None,
) -> tuple[Measured, list[str]]:
    """Unpack, plan, run sealed, check constraints; Rejected / VerifierFailed on the way."""
    replaced: dict[str, Path] = {}
    if t.script is not None and it.packed is not None:
        dest = folder / "scripts" / t.script.step
        shutil.rmtree(dest, ignore_errors=True)
        files = safe_extract(it.packed, dest, t.script.max_files, t.script.max_bytes)
        original = Registry.for_repo(repo).scripts[t.script.step]
        check_script_folder(dest, original.path, original.run)
        details["script"] = {"step": t.script.step, "files": files}
        replaced[t.script.step] = dest
    assert it.stored is not None
    plan = plan_submission(repo, t, sub.inputs, sid, it.stored, replaced, digest)
    with private.staged(t, sealed_settings(t)) as settings:
        m = run_sealed(repo, t, plan, sid, details, on_progress, base.get("docker"), settings)
    flags = claim_flags(t, sub.claimed, m.metrics)  # also on record when rejected below
    broken = [c for c in t.constraints if not c.holds(m.metrics[c.metric])]
    if broken:
        raise Rejected("constraint", "; ".join(f"{c.metric} = {m.metrics[c.metric]:.4g}, needs {c.text()}" for c in broken), dict(m.metrics))  # fmt: skip
    return m, flags


def attempt(
    repo: Path,
    t: Tournament,
    file: Path | None,
    archive: Path | None = None,
    signature: Path | None = None,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    digest: str | None = None,
    again: dict[str, Any] | None = None,
    sid: str | None = None,
    presigned: tuple[str, dict[str, Any], str | None] | None = None,
    record: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> Verdict:
    """One attempt → one ledger line. `again` re-runs a stored submission (retry/reverify).

    From the submission service: `sid` (the job's attempt id), `presigned` (signature,
    signed fields and, for a worker without the registry, the key the service has
    registered for the participant), `record` (writes the line and returns it: the
    service appends what its workers report) and `extra` (fields for the line)."""
    resumed = sid is not None  # the service's id: a run cut short by a crash comes back
    sid = sid or new_submission_id()
    root = t.root(repo)
    folder = root / "submissions" / sid
    folder.mkdir(parents=True, exist_ok=resumed)
    ledger = Ledger(root / "ledger.jsonl")  # read here; appended under the organiser's key
    it = Intake(presigned=presigned)
    sub: Submission | None = None
    details: dict[str, Any] = {}
    m = Measured({}, {})
    flags: list[str] = []
    verdict, reason, stage = attempts.ACCEPTED, "", ""
    t0 = time.monotonic()
    when = now or datetime.now(UTC)
    # the limit check and this attempt's line are one step per participant: a burst
    # of parallel submissions cannot all pass the check before any of them is recorded
    with contextlib.ExitStack() as hold:
        try:
            if again is None:
                assert file is not None
                status = t.status(when)
                if status != "open":
                    moment = t.open if status == "upcoming" else t.close
                    raise Rejected("window", f"the tournament is {status} ({moment:%Y-%m-%d %H:%M} UTC)")  # fmt: skip
                sub = _intake(repo, t, file, archive, signature, folder, it)
                who = sub.participant
                hold.enter_context(attempts.participant_lock(root, who))
                reason_limit = attempts.limit_reason(ledger.entries(), t, who, when)
                if reason_limit:
                    raise Rejected("limit", reason_limit)
            else:
                _restore(again, root, folder, it)
                sub = _stored_sub(t, folder)
            m, flags = _run(repo, t, sid, folder, it, sub, digest, details, on_progress)
        except identity.UnknownParticipant as r:  # nobody's attempt: answered, not recorded
            shutil.rmtree(folder, ignore_errors=True)
            return Verdict(False, {}, folder, r.reason, r.stage)
        except Rejected as r:
            verdict, reason, stage = attempts.REJECTED, r.reason, r.stage
            m = Measured(dict(r.metrics), m.repetitions, m.intervals)
        except VerifierFailed as exc:
            verdict, reason, stage = attempts.INFRA, str(exc), "run"
        body = {
            "time": now_iso(),
            "tournament": t.id,
            "tournament_sha256": t.spec_sha256,
            "scoring_sha256": t.scoring_sha256,
            "submission": {
                "id": sid,
                "participant": it.participant,
                "entry": it.entry,
                "key": it.key,
                "signature": it.signature,
                "signed": it.signed,
                "file": str(it.stored.relative_to(root)) if it.stored else None,
                "sha256": it.sub_sha256,
                "archive": str(it.packed.relative_to(root)) if it.packed else None,
                "archive_sha256": it.archive_sha256,
                "inputs": sub.inputs if sub else None,
                "claimed": sub.claimed if sub else None,
            },
            "verdict": verdict,
            "stage": stage or None,
            "reason": reason or None,
            "metrics": m.metrics,
            "repetitions": m.repetitions,
            "intervals": m.intervals,
            "flags": flags,
            "verification": {
                "runtime": "docker",
                "repetitions": t.repetitions,
                "aggregate": t.aggregate,
                "confidence": t.confidence,
                "limits": t.limits,
                "images": details.get("images", []),
                "keys": details.get("keys", []),
                "queued_s": details.get("queued_s", 0.0),
                "duration_s": round(time.monotonic() - t0 - details.get("queued_s", 0.0), 3),
            },
            **({k: again[k] for k in ("retry_of", "reverify_of") if again and k in again}),
            **(extra or {}),
        }
        entry = record(body) if record is not None else tournament_ledger(root, t.id).append(body)
    atomic_write_json(folder / "verification.json", {**details, "ledger_entry": entry})
    if verdict == attempts.INFRA and record is None:  # `efflab tournament retry` runs it again
        atomic_write_json(root / "queue" / f"{sid}.json", {"seq": entry["seq"], "submission": sid})  # fmt: skip
    return Verdict(verdict == attempts.ACCEPTED, entry, folder, reason, stage, m.metrics, flags)


def _restore(again: dict[str, Any], root: Path, folder: Path, it: Intake) -> None:
    """Copy a stored submission's files into a new attempt's folder."""
    sub = again["submission"]
    src = root / sub["file"]
    if not src.is_file() or sha256_file(src) != sub["sha256"]:
        raise RunFailed(f"{src}: the stored submission is missing or differs from its ledger digest")  # fmt: skip
    it.stored = folder / "submission.yaml"
    shutil.copyfile(src, it.stored)
    it.sub_sha256, it.key = sub["sha256"], sub.get("key")
    it.signature, it.signed = sub.get("signature"), sub.get("signed")
    it.participant, it.entry = sub.get("participant"), sub.get("entry")
    if sub.get("archive"):
        it.packed = folder / "script.tar.gz"
        shutil.copyfile(root / sub["archive"], it.packed)
        it.archive_sha256 = sha256_file(it.packed)
        if it.archive_sha256 != sub.get("archive_sha256"):
            raise RunFailed(f"{root / sub['archive']}: differs from its ledger digest")


def submit(
    repo: Path,
    tid: str,
    file: Path,
    archive: Path | None = None,
    signature: Path | None = None,
    now: datetime | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Verdict:
    """Validate, verify sealed and record one submission; the verdict is in the ledger.

    Raises BadInput (exit 2) for a file that does not exist or a broken tournament
    spec and RunFailed (exit 1) when the sandbox cannot be proven: neither is recorded.
    """
    t = load_tournament(repo, tid)
    file = Path(os.path.abspath(file))
    if not os.path.lexists(file):
        raise BadInput(file, "$", "an existing submission file", "no such file")
    if archive is not None and not os.path.lexists(archive):
        raise BadInput(archive, "$", "an existing .tar.gz or folder (--archive)", "no such path")
    digest = preflight(repo, t)
    return attempt(repo, t, file, archive, signature, now, on_progress, digest)


def retry(repo: Path, tid: str, on_progress: Callable[[int, int], None] | None = None) -> list[Verdict]:  # fmt: skip
    """Verify again every submission queued by an `infrastructure-error`."""
    t = load_tournament(repo, tid)
    q = t.root(repo) / "queue"
    jobs = sorted(q.glob("*.json")) if q.is_dir() else []
    if not jobs:
        return []
    digest = preflight(repo, t)
    entries = {e["seq"]: e for e in attempts_only(Ledger(t.root(repo) / "ledger.jsonl").entries())}
    out = []
    for j in jobs:
        seq = json.loads(j.read_text())["seq"]
        v = attempt(repo, t, None, digest=digest, on_progress=on_progress, again={**entries[seq], "retry_of": seq})  # fmt: skip
        j.unlink()
        out.append(v)
    return out


def reverify(repo: Path, tid: str, on_progress: Callable[[int, int], None] | None = None) -> list[Verdict]:  # fmt: skip
    """Measure again, under the current spec, each stale entry that still holds a row."""
    t = load_tournament(repo, tid)
    entries = attempts_only(Ledger(t.root(repo) / "ledger.jsonl").entries())
    latest: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
    for e in entries:
        if e["verdict"] == attempts.ACCEPTED:
            s = e["submission"]
            latest[(s["participant"], s["entry"], s.get("key"))] = e
    # measured again under this spec already (ranked again, or rejected): not again
    done = {e["reverify_of"] for e in entries if e.get("reverify_of") is not None and not attempts.is_stale(e, t)}  # fmt: skip
    stale = [e for e in latest.values() if attempts.is_stale(e, t) and e["seq"] not in done]
    if not stale:
        return []
    digest = preflight(repo, t)
    return [
        attempt(
            repo,
            t,
            None,
            digest=digest,
            on_progress=on_progress,
            again={**e, "reverify_of": e["seq"]},
        )  # fmt: skip
        for e in stale
    ]
