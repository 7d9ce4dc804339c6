"""The organiser's secret: where it lives (outside the repo) and how a run gets it.

Why: what a tournament scores on must be out of every participant's reach. For a
public dataset (the digits ship with scikit-learn, in the very image an entry runs
in) the scoring set is made by organiser steps from a secret: the spec's `private:`
names those steps and an input of the measured step. The secret itself:

- lives in the organiser's config, outside the repo: `$EFFLAB_ORGANISER_DIR/<id>/secret`
  (default `~/.config/efflab/organiser`), a 0600 file in a 0700 folder, made by
  `efflab tournament init-secret <id>`;
- reaches only the containers of the `private.steps`, as a read-only mount of a fresh
  per-run copy (readable by the sandbox uid, removed afterwards) — never an
  environment variable, never the repo, never the replaceable step;
- enters the plan only as its sha256 (the measured step's `private.input`): a key
  changes when the secret is rotated, and records and the ledger show a digest that
  does not reveal it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.runtime import sealed
from efflab.tournaments.spec import Tournament

ENV_VAR = "EFFLAB_ORGANISER_DIR"


def organiser_dir() -> Path:
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".config" / "efflab" / "organiser")


def secret_file(tid: str) -> Path:
    return organiser_dir() / tid / "secret"


def init_secret(repo: Path, tid: str, force: bool = False) -> Path:
    """Create the tournament's secret (32 random bytes, hex); never inside the repo."""
    f = secret_file(tid)
    if f.resolve().is_relative_to(repo.resolve()):
        raise BadInput(f"${ENV_VAR}", "$", "a folder outside the repo (the secret must never be committed)", str(f))  # fmt: skip
    if f.exists() and not force:
        raise BadInput(f, "$", "no secret yet (--force rotates it: older entries become stale)", "an existing secret")  # fmt: skip
    f.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(f.parent, 0o700)
    tmp = f.with_name(f".secret.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    os.replace(tmp, f)
    return f


def secret_digest(t: Tournament) -> str:
    f = secret_file(t.id)
    if not f.is_file():
        raise BadInput(f, "$", f"the organiser's secret of '{t.id}' (run `efflab tournament init-secret {t.id}`)", "no such file")  # fmt: skip
    return hashlib.sha256(f.read_bytes()).hexdigest()


@contextlib.contextmanager
def staged(t: Tournament, settings: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Sealed settings with the secret staged for the private steps (removed after)."""
    if t.private is None:
        yield settings
        return
    uid, gid = sealed.sandbox_user(settings)
    d = Path(tempfile.mkdtemp(prefix="efflab-private-"))
    try:
        shutil.copyfile(secret_file(t.id), d / "secret")
        os.chmod(d / "secret", 0o400)
        os.chmod(d, 0o500)
        if os.getuid() == 0:
            os.chown(d / "secret", uid, gid)
            os.chown(d, uid, gid)
        yield {**settings, "private": {"dir": str(d), "steps": list(t.private.steps)}}
    finally:
        os.chmod(d, 0o700)
        shutil.rmtree(d, ignore_errors=True)
