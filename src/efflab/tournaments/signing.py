"""The participant's side of identities: sign exactly what `submit` will digest.

Why apart from efflab.tournaments.identity (keys and checks): signing must read the
submission and its archive the way the verifier will — through
efflab.tournaments.untrusted, the archive packed deterministically — or the digests,
and so the signature, would not match.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from efflab.core.errors import BadInput
from efflab.core.specio import atomic_write_text
from efflab.tournaments import identity, untrusted
from efflab.tournaments.spec import load_tournament
from efflab.tournaments.submission import Rejected, load_submission


def sign_submission(
    repo: Path, tid: str, file: Path, key_file: Path, archive: Path | None = None
) -> tuple[Path, str]:
    """Write the detached signature (FILE.sig, or the file's `signature:`); (path, fingerprint)."""
    text, fp, name = signature(repo, tid, file, key_file, archive)
    out = file.parent / name
    atomic_write_text(out, text + "\n")
    return out, fp


def signature(
    repo: Path, tid: str, file: Path, key_file: Path, archive: Path | None = None
) -> tuple[str, str, str]:
    """The detached signature's text, the key's fingerprint and the file name `submit`
    looks for by default (`submit --key` signs in memory with it)."""
    t = load_tournament(repo, tid)
    key = identity.load_private(key_file)
    try:
        data = untrusted.read_submission_file(file)
        sub = load_submission(file, t.id, t.inputs_schema, t.metrics)
        archive_sha = None
        if archive is not None or sub.archive:
            n = t.script.max_files if t.script else 1
            size = t.script.max_bytes if t.script else untrusted.MAX_SUBMISSION_BYTES
            u = (
                untrusted.read_path(archive, n, size)
                if archive is not None
                else untrusted.read_named(
                    file.parent, sub.archive or "", n, size, f"{file}: $.archive"
                )  # fmt: skip
            )
            archive_sha = hashlib.sha256(untrusted.archive_bytes(u)).hexdigest()
    except Rejected as exc:
        raise BadInput(file, "$", "a submission that verification would accept for signing", exc.reason) from None  # fmt: skip
    msg = identity.message(t.id, hashlib.sha256(data).hexdigest(), archive_sha)
    pub = key.public_key().public_bytes_raw()
    return identity.sign(key, msg), identity.fingerprint(pub), sub.signature or f"{file.name}.sig"
