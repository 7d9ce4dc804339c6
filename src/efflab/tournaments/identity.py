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


@dataclass(frozen=True)
class Key:
    participant: str
    public_b64: str
    fingerprint: str  # sha256 of the raw public key, first 16 hex digits
    registered: str


def fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


def message(tournament: str, submission_sha256: str, archive_sha256: str | None) -> bytes:
    """What a participant signs: the tournament and the digests of what they hand in."""
    return canonical_json(
        {
            "v": MESSAGE_VERSION,
            "tournament": tournament,
            "submission_sha256": submission_sha256,
            "archive_sha256": archive_sha256,
        }
    ).encode()


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


class Registry:
    """results/tournaments/<id>/participants.json: participant -> registered public key."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[str, Key]:
        if not self.path.exists():
            return {}
        import json

        data: dict[str, Any] = json.loads(self.path.read_text())
        return {p: Key(p, v["public_key"], v["fingerprint"], v["registered"]) for p, v in data.items()}  # fmt: skip

    def register(self, participant: str, public_b64: str, replace: bool = False) -> Key:
        """Add a participant's key; a different key for a known name needs `replace`."""
        raw = parse_public(public_b64, "public key")
        keys = self.load()
        old = keys.get(participant)
        if old and old.fingerprint != fingerprint(raw) and not replace:
            raise BadInput(
                self.path,
                f"$.{participant}",
                "a participant not yet registered (or --replace to rotate the key; rows "
                "signed with the old key stay theirs and cannot be replaced by the new one)",
                f"registered with key {old.fingerprint}",
            )
        keys[participant] = Key(participant, base64.b64encode(raw).decode(), fingerprint(raw), now_iso())  # fmt: skip
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path,
            {
                p: {
                    "public_key": k.public_b64,
                    "fingerprint": k.fingerprint,
                    "registered": k.registered,
                }
                for p, k in sorted(keys.items())
            },  # fmt: skip
        )
        return keys[participant]

    def check(self, participant: str, msg: bytes, signature: bytes | None) -> Key:
        """The key that verified `signature` over `msg`, or Rejected (stage identity)."""
        key = self.load().get(participant)
        if key is None:
            raise Rejected("identity", f"participant '{participant}' has no registered key (the organiser runs `efflab tournament register`)")  # fmt: skip
        if signature is None:
            raise Rejected("identity", "unsigned: this tournament takes only submissions signed with the participant's registered key (`efflab tournament sign`)")  # fmt: skip
        try:
            sig = base64.b64decode(signature.strip(), validate=True)
            pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.public_b64))
            pub.verify(sig, msg)
        except (InvalidSignature, binascii.Error, ValueError):
            raise Rejected("identity", f"the signature does not verify with the key registered for '{participant}' ({key.fingerprint}): signed by another key, or over other content") from None  # fmt: skip
        return key
