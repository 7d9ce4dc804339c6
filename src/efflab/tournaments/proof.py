"""Proving a ledger: who wrote each line, whose key signed each attempt, what was measured.

Why beyond the hash chain (efflab.tournaments.ledger): a chain proves order, but anyone
running efflab's ledger code can append a well-formed line — an unregistered key, no
file digests, a latency of 0.01 µs. A line counts only when every check below holds;
the first failing check names the entry:

- the genesis entry names the organiser's key, and that key is the one the verifier
  trusts (`--organiser-key`, else the key kept on this machine; with neither, the
  genesis key is reported as unpinned);
- every entry's hash is signed by that key (`head_sig`);
- registrations and revocations are replayed in order, so each attempt is checked
  against the key registered for its participant *when it was made*;
- an attempt in a keyed tournament that claims a key carries the detached signature
  and the signed fields; the signed digests are the entry's and the signature
  verifies with that key; an accepted one must have verified a key;
- an accepted attempt records the digests of its stored files, and its metrics are the
  aggregate of its repetitions, one per repetition the tournament asks for;
- with `files` (verify-ledger): stored files match their digests, and the run records
  the entry names exist and hold the repetitions it reports.

`--expect-head` must name the current head or an earlier entry signed by the organiser.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.tournaments import identity, organiser
from efflab.tournaments.attempts import ACCEPTED, INFRA, REJECTED
from efflab.tournaments.ledger import ORGANISER, REGISTER, REVOKE, Verification, verify
from efflab.tournaments.spec import Tournament
from efflab.tournaments.submission import sha256_file

HEX64 = re.compile(r"^[0-9a-f]{64}$")
SIGNED_VERSIONS = (identity.MESSAGE_VERSION, identity.SERVICE_VERSION)
MAX_RECORD_BYTES = 1 << 20


@dataclass
class Problem:
    seq: int
    reason: str

    def text(self) -> str:
        return f"entry {self.seq} (line {self.seq + 1}): {self.reason}"


@dataclass
class Proof:
    """What `verify-ledger` found: the chain, the organiser key and each entry's problems."""

    chain: Verification
    organiser: str | None = None  # fingerprint named by the genesis
    pinned: str = ""  # how that key was pinned
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    @property
    def bad(self) -> set[int]:
        return {p.seq for p in self.problems}

    def to_json(self) -> dict[str, Any]:
        es = self.chain.entries
        return {
            **self.chain.to_json(),
            "ok": self.ok,
            "organiser_key": self.organiser,
            "organiser_key_pinned_by": self.pinned or None,
            "problems": [
                {"seq": p.seq, "line": p.seq + 1, "reason": p.reason} for p in self.problems
            ],  # fmt: skip
            "head": es[-1]["hash"] if es and self.ok else None,
            "head_sig": es[-1].get("head_sig") if es and self.ok else None,
        }


def prove(
    repo: Path,
    t: Tournament,
    expect_head: str | None = None,
    organiser_pub: str | None = None,
    files: bool = True,
) -> Proof:
    root = t.root(repo)
    res = Proof(verify(root / "ledger.jsonl"))
    if not res.chain.ok:
        return res
    entries = res.chain.entries
    if not entries:
        if expect_head:
            res.problems.append(Problem(0, f"the ledger is empty; expected head {expect_head[:12]}…"))  # fmt: skip
        return res
    g = entries[0]
    if g.get("kind") != ORGANISER or not isinstance(g.get("public_key"), str):
        res.problems.append(Problem(0, "the ledger does not begin with the organiser's genesis entry (a ledger from before signed heads, or forged): no line can be attributed"))  # fmt: skip
        return res
    pub = g["public_key"]
    try:
        fp = identity.fingerprint(identity.parse_public(pub, "genesis"))
    except Exception:  # noqa: BLE001 - BadInput: any unparsable key is a problem here
        res.problems.append(Problem(0, "the genesis entry's organiser key is not an Ed25519 public key"))  # fmt: skip
        return res
    res.organiser = fp
    trusted, res.pinned = _trusted(t.id, organiser_pub)
    if trusted is not None and trusted != fp:
        res.problems.append(Problem(0, f"the genesis names organiser key {fp}, but the trusted organiser key is {trusted} ({res.pinned}): the ledger was rewritten under another key"))  # fmt: skip
        return res
    if g.get("tournament") != t.id:
        res.problems.append(Problem(0, f"the genesis is for tournament {g.get('tournament')!r}, not {t.id!r}"))  # fmt: skip
    keys: dict[str, identity.Key] = {}
    for e in entries:
        why = _entry_problem(e, pub, keys, t, root, files)
        if why:
            res.problems.append(Problem(e["seq"], why))
    if expect_head:
        hit = next((e for e in entries if e["hash"] == expect_head), None)
        if hit is None:
            res.problems.append(Problem(len(entries), f"the expected head {expect_head[:12]}… is not in the chain: entries were cut off the end, or the whole ledger was rewritten"))  # fmt: skip
        elif hit["seq"] in res.bad:
            res.problems.append(Problem(hit["seq"], f"the expected head {expect_head[:12]}… is an entry the organiser did not sign"))  # fmt: skip
    return res


def _trusted(tid: str, organiser_pub: str | None) -> tuple[str | None, str]:
    if organiser_pub is not None:
        return identity.fingerprint(identity.parse_public(organiser_pub, "--organiser-key")), "--organiser-key"  # fmt: skip
    kept = organiser.load(tid)
    if kept is not None:
        return kept.fingerprint, f"the key kept on this machine ({organiser.key_file(tid)})"
    return None, "nothing: the genesis key is unpinned (give --organiser-key)"


def _entry_problem(
    e: dict[str, Any],
    pub: str,
    keys: dict[str, identity.Key],
    t: Tournament,
    root: Path,
    files: bool,
) -> str:
    """Why entry `e` cannot be attributed or believed, or ''. Updates `keys`."""
    if not organiser.verify_head(pub, e["hash"], e.get("head_sig")):
        return "not signed by the organiser: appended outside the organiser's own efflab, or its signature was edited"  # fmt: skip
    kind = e.get("kind")
    if kind == ORGANISER:
        return "" if e["seq"] == 0 else "a second genesis entry"
    if kind in (REGISTER, REVOKE):
        who = e.get("participant")
        if not isinstance(who, str) or not who:
            return f"a {kind} without a participant"
        if kind == REVOKE:
            if keys.pop(who, None) is None:
                return f"revokes '{who}', who has no registered key"
            return ""
        try:
            raw = identity.parse_public(str(e.get("public_key")), "register")
        except Exception:  # noqa: BLE001
            return f"registers '{who}' with something that is not an Ed25519 public key"
        if identity.fingerprint(raw) != e.get("fingerprint"):
            return f"registers '{who}' under fingerprint {e.get('fingerprint')!r}, but the key's is {identity.fingerprint(raw)}"  # fmt: skip
        keys[who] = identity.Key(who, str(e["public_key"]), identity.fingerprint(raw), str(e.get("time")))  # fmt: skip
        return ""
    if kind not in (None, "submission"):
        return f"an unknown kind {kind!r}"
    sub = e.get("submission")
    if not isinstance(sub, dict):
        return "an attempt without its submission"
    if e.get("tournament") != t.id:
        return f"an attempt for tournament {e.get('tournament')!r}, not {t.id!r}"
    verdict = e.get("verdict")
    if verdict not in (ACCEPTED, REJECTED, INFRA):
        return f"an unknown verdict {verdict!r}"
    accepted = verdict == ACCEPTED
    if accepted:
        if not isinstance(sub.get("sha256"), str) or not HEX64.match(sub["sha256"]):
            return (
                f"accepted without the sha256 of its submission file (found {sub.get('sha256')!r})"
            )
        if not isinstance(sub.get("file"), str):
            return "accepted without its stored submission file"
        if sub.get("archive") is not None and not HEX64.match(str(sub.get("archive_sha256"))):
            return "accepted with an archive but without the archive's sha256"
    if t.identity == "keys" and (accepted or sub.get("key")):
        why = _signature_problem(sub, keys, t.id)
        if why:
            return why
    if accepted:
        why = _metrics_problem(e, t)
        if why:
            return why
        if files:
            return _files_problem(e, sub, root)
    return ""


def _signature_problem(sub: dict[str, Any], keys: dict[str, identity.Key], tid: str) -> str:
    who = sub.get("participant")
    key = keys.get(who) if isinstance(who, str) else None
    if key is None:
        return f"signed as '{who}', who had no registered key at that point of the ledger"
    if sub.get("key") != key.fingerprint:
        return f"names key {sub.get('key')!r}, but '{who}' was registered with {key.fingerprint}"
    fields, sig = sub.get("signed"), sub.get("signature")
    if not isinstance(fields, dict) or not isinstance(sig, str) or not sig:
        return "no stored signature and signed digests: the participant's signature cannot be checked"  # fmt: skip
    if fields.get("v") not in SIGNED_VERSIONS or fields.get("tournament") != tid:
        return "the signed fields are not a submission to this tournament"
    if (fields.get("submission_sha256"), fields.get("archive_sha256")) != (sub.get("sha256"), sub.get("archive_sha256")):  # fmt: skip
        return "the signed digests are not the digests this entry records"
    if not identity.verify_signature(key.public_b64, identity.message_bytes(fields), sig):
        return f"the stored signature does not verify with '{who}''s key {key.fingerprint}"
    return ""


def _metrics_problem(e: dict[str, Any], t: Tournament) -> str:
    from efflab.tournaments.verification import aggregate

    ver = e.get("verification") if isinstance(e.get("verification"), dict) else {}
    n, how = ver.get("repetitions"), ver.get("aggregate")
    reps = e.get("repetitions") if isinstance(e.get("repetitions"), dict) else {}
    metrics = e.get("metrics") if isinstance(e.get("metrics"), dict) else {}
    if not metrics:
        return "accepted without metrics"
    for m, v in metrics.items():
        vs = reps.get(m)
        if not isinstance(vs, list) or not vs or not all(isinstance(x, int | float) for x in vs):
            return f"{m} = {v!r} is not backed by repetitions"
        if isinstance(n, int) and len(vs) != n:
            return f"{m} has {len(vs)} repetitions; the verification ran {n}"
        try:
            want = aggregate([float(x) for x in vs], str(how), t.better(m))
        except (TypeError, ValueError):
            return f"{m}: repetitions that cannot be aggregated"
        if not isinstance(v, int | float) or not math.isclose(float(v), want, rel_tol=1e-9, abs_tol=1e-12):  # fmt: skip
            return f"{m} = {v!r} is not the {how} of its repetitions ({want:.6g})"
    return ""


def _files_problem(e: dict[str, Any], sub: dict[str, Any], root: Path) -> str:
    for name, digest in ((sub.get("file"), sub.get("sha256")), (sub.get("archive"), sub.get("archive_sha256"))):  # fmt: skip
        if not name:
            continue
        f = (root / str(name)).resolve()
        if not f.is_relative_to(root.resolve()) or not f.is_file():
            return f"its stored {name} is missing"
        if sha256_file(f) != digest:
            return f"its stored {name} differs from its recorded sha256"
    keys = (e.get("verification") or {}).get("keys") or []
    if not keys:
        return "accepted without the keys of the runs that measured it"
    seen: dict[str, list[float]] = {}
    for k in keys:
        f = root / "runs" / f"{k}.json"
        if not re.match(r"^[0-9a-zA-Z_-]+$", str(k)) or not f.is_file() or f.stat().st_size > MAX_RECORD_BYTES:  # fmt: skip
            return f"the run record runs/{k}.json it names is missing"
        try:
            rec = json.loads(f.read_bytes())
            for m, v in rec["metrics"].items():
                seen.setdefault(m, []).append(float(v["value"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"the run record runs/{k}.json is unreadable"
    for m, vs in (e.get("repetitions") or {}).items():
        if sorted(seen.get(m, [])) != sorted(float(x) for x in vs):
            return f"its {m} repetitions are not what its run records measured"
    return ""
