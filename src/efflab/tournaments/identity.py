"""Participant identities: registered Ed25519 public keys and signed submissions.

Why: a self-declared `participant:` name lets anyone overwrite anyone's leaderboard
row. In a keyed tournament (the default) the organiser registers each participant's
public key (`efflab tournament register`); a participant signs what they submit
(`efflab tournament sign`), and verification checks the signature against the key
registered for the name in the file. The signed message binds the tournament id, the
sha256 of the submission file and of the (deterministically packed) archive, so a
signature cannot be replayed on other content or in another tournament. A row is
replaced only by a submission verified with the same key (the ledger records its
fingerprint).

Keys are raw 32-byte Ed25519 keys; public keys travel as base64 text, private keys
as PKCS#8 PEM files (mode 0600).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from efflab.core.clock import now_iso
from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_json, atomic_write_text, canonical_json
from efflab.tournaments.submission import Rejected

MESSAGE_VERSION = "efflab-tournament-submission-v1"
# the service's: the same digests plus a nonce and a time, so an upload can't be replayed
SERVICE_VERSION = "efflab-tournament-submission-v2"


@dataclass(frozen=True)
class Key:
    participant: str
    public_b64: str
    fingerprint: str  # sha256 of the raw public key, first 16 hex digits
    registered: str


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_fields(
    tournament: str,
    submission_sha256: str,
    archive_sha256: str | None,
    nonce: str | None = None,
    timestamp: str | None = None,
) -> dict[str, Any]:
    """What a participant signs, as the ledger stores it: the tournament and the digests
    of what they hand in (and, over the service, a nonce and the moment of signing)."""
    out: dict[str, Any] = {
        "v": MESSAGE_VERSION if nonce is None else SERVICE_VERSION,
        "tournament": tournament,
        "submission_sha256": submission_sha256,
        "archive_sha256": archive_sha256,
    }
    if nonce is not None:
        out.update(nonce=nonce, timestamp=timestamp)
    return out


def message(tournament: str, submission_sha256: str, archive_sha256: str | None) -> bytes:
    """The bytes signed for a local submission (`efflab tournament sign`)."""
    return canonical_json(signed_fields(tournament, submission_sha256, archive_sha256)).encode()


def message_bytes(fields: dict[str, Any]) -> bytes:
    return canonical_json(fields).encode()


def verify_signature(public_b64: str, msg: bytes, signature: str | bytes) -> bool:
    try:
        sig = base64.b64decode(signature.strip(), validate=True)
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64)).verify(sig, msg)
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def replay(entries: list[dict[str, Any]]) -> dict[str, Key]:
    """Registered keys after these ledger entries (registrations and revocations)."""
    keys: dict[str, Key] = {}
    for e in entries:
        who = e.get("participant")
        if e.get("kind") == "register" and isinstance(who, str):
            keys[who] = Key(who, str(e.get("public_key")), str(e.get("fingerprint")), str(e.get("time")))  # fmt: skip
        elif e.get("kind") == "revoke" and isinstance(who, str):
            keys.pop(who, None)
    return keys


def generate(out: Path) -> Key:
    """A new key pair: `out` (private PEM, 0600) and `out.pub` (base64 public key)."""
    if out.exists() or Path(f"{out}.pub").exists():
        raise BadInput(out, "$", "a path where no key exists yet", "an existing file")
    priv = Ed25519PrivateKey.generate()
    pem = priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    raw = priv.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    atomic_write_text(f"{out}.pub", base64.b64encode(raw).decode() + "\n")
    return Key("", base64.b64encode(raw).decode(), fingerprint(raw), now_iso())


def load_private(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BadInput(path, "$", "an Ed25519 private key (PEM, from `tournament keygen`)", type(exc).__name__) from None  # fmt: skip
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(path, "$", "an Ed25519 private key", type(key).__name__)
    return key


def sign(key: Ed25519PrivateKey, msg: bytes) -> str:
    return base64.b64encode(key.sign(msg)).decode()


def parse_public(text: str, where: Path | str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise BadInput(where, "$", "a base64 Ed25519 public key (32 bytes, from `keygen`'s .pub)", f"{len(raw)} bytes")  # fmt: skip
    return raw


class UnknownParticipant(Rejected):
    """An identity failure of a name nobody registered: answered, never a ledger line
    (an attempt needs someone to attempt it; a typo or a stranger must not fill the
    ledger, the board or a name's quota before its owner registers)."""


class Registry:
    """Participants' registered keys, as the ledger records them.

    Registrations and revocations are ledger entries (`kind: register | revoke`),
    signed like every entry by the organiser (efflab.tournaments.organiser), so
    `verify-ledger` can say which key was registered for a name when each attempt was
    made. `participants.json` beside the ledger is a readable view written after each
    change; nothing reads it back.
    """

    def __init__(self, path: Path):
        self.path = path  # results/tournaments/<id>/participants.json
        self.root = path.parent
        self.tid = path.parent.name

    def load(self) -> dict[str, Key]:
        from efflab.tournaments.ledger import Ledger

        return replay(Ledger(self.root / "ledger.jsonl").entries())

    def _append(self, body: dict[str, Any]) -> None:
        from efflab.tournaments.organiser import tournament_ledger

        tournament_ledger(self.root, self.tid).append({"time": now_iso(), "tournament": self.tid, **body})  # fmt: skip
        atomic_write_json(
            self.path,
            {p: {"public_key": k.public_b64, "fingerprint": k.fingerprint, "registered": k.registered}
             for p, k in sorted(self.load().items())},
        )  # fmt: skip

    def register(self, participant: str, public_b64: str, replace: bool = False) -> Key:
        """Add a participant's key; a different key for a known name needs `replace`."""
        raw = parse_public(public_b64, "public key")
        old = self.load().get(participant)
        if old and old.fingerprint != fingerprint(raw) and not replace:
            raise BadInput(
                self.path,
                f"$.{participant}",
                "a participant not yet registered (or --replace to rotate the key; rows "
                "signed with the old key stay theirs and cannot be replaced by the new one)",
                f"registered with key {old.fingerprint}",
            )
        if old and old.fingerprint == fingerprint(raw):
            return old
        pub = base64.b64encode(raw).decode()
        self._append({"kind": "register", "participant": participant, "public_key": pub, "fingerprint": fingerprint(raw)})  # fmt: skip
        return self.load()[participant]

    def revoke(self, participant: str) -> Key:
        """Withdraw a participant's key: later attempts signed with it are refused."""
        old = self.load().get(participant)
        if old is None:
            raise BadInput(self.path, f"$.{participant}", "a registered participant", "none registered under that name")  # fmt: skip
        self._append({"kind": "revoke", "participant": participant, "fingerprint": old.fingerprint})  # fmt: skip
        return old

    def check(self, participant: str, msg: bytes, signature: bytes | None) -> Key:
        """The key that verified `signature` over `msg`, or Rejected (stage identity)."""
        key = self.load().get(participant)
        if key is None:
            raise UnknownParticipant("identity", f"participant '{participant}' has no registered key (the organiser runs `efflab tournament register`; for a local trial, `efflab tournament init TOURNAMENT --demo`)")  # fmt: skip
        if signature is None:
            raise Rejected("identity", "unsigned: this tournament takes only submissions signed with the participant's registered key (`efflab tournament sign`)")  # fmt: skip
        if not verify_signature(key.public_b64, msg, signature):
            raise Rejected("identity", f"the signature does not verify with the key registered for '{participant}' ({key.fingerprint}): signed by another key, or over other content")  # fmt: skip
        return key
