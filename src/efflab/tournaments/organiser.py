"""The organiser's signing key: who vouches for every ledger head.

Why: a hash chain proves order, not authorship — anyone who can run efflab's ledger
code can append a well-formed line. So every entry's hash is signed by the
tournament organiser's Ed25519 key (`head_sig`), and the ledger's first entry (the
genesis, `kind: organiser`) names that key. `verify-ledger` accepts an entry only if
its head signature verifies with the organiser key; the key itself is pinned by what
the verifier trusts (`--organiser-key`, else the key kept on this machine), so a
ledger rewritten from scratch under another key is refused too.

The private key lives beside the organiser's secret, outside the repo:
`$EFFLAB_ORGANISER_DIR/<id>/organiser.pem` (0600, default `~/.config/efflab/organiser`),
made on the first append on the organiser's machine.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from efflab.tournaments import identity
from efflab.tournaments.ledger import Ledger
from efflab.tournaments.private import organiser_dir

HEAD_DOMAIN = b"efflab-ledger-head-v1:"


@dataclass(frozen=True)
class Organiser:
    """The organiser's key pair for one tournament (private part only on their machine)."""

    key: Ed25519PrivateKey
    public_b64: str
    fingerprint: str

    def sign_head(self, entry_hash: str) -> str:
        return base64.b64encode(self.key.sign(HEAD_DOMAIN + entry_hash.encode())).decode()


def key_file(tid: str) -> Path:
    return organiser_dir() / tid / "organiser.pem"


def _from_private(key: Ed25519PrivateKey) -> Organiser:
    raw = key.public_key().public_bytes_raw()
    return Organiser(key, base64.b64encode(raw).decode(), identity.fingerprint(raw))


def load(tid: str) -> Organiser | None:
    """The organiser key kept on this machine, or None."""
    f = key_file(tid)
    return _from_private(identity.load_private(f)) if f.is_file() else None


def load_or_create(tid: str) -> Organiser:
    """The kept key, made (0600 in a 0700 folder) when this machine has none yet."""
    f = key_file(tid)
    if not f.is_file():
        f.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:  # O_EXCL: two first appends at once keep one key
            fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
                fh.flush()
                os.fsync(fh.fileno())
    org = load(tid)
    assert org is not None
    return org


def verify_head(public_b64: str, entry_hash: str, sig_b64: object) -> bool:
    """Whether `sig_b64` is the organiser's signature over this entry hash."""
    if not isinstance(sig_b64, str):
        return False
    try:
        pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
        pub.verify(base64.b64decode(sig_b64, validate=True), HEAD_DOMAIN + entry_hash.encode())
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def tournament_ledger(root: Path, tid: str) -> Ledger:
    """The tournament's ledger, appended to under the organiser's key (made if missing)."""
    return Ledger(root / "ledger.jsonl", load_or_create(tid), tid)
