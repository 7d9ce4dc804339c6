"""A tournament ready for a local trial in one step (`efflab tournament init T --demo`).

Why: entering a keyed tournament took five commands from the organiser and the
participant (`init-secret`, `keygen`, `register`, `sign`, `submit`) before the first
verdict. `init` makes what an organiser must make (the secret, when the spec scores
on private data), and `--demo` plays the first participant: a key pair kept with the
organiser's files (outside the repo), registered under the name the shipped examples
use, so `submit ... --key` works at once. Running it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from efflab.core.errors import BadInput
from efflab.tournaments import identity, private
from efflab.tournaments.spec import Tournament

DEMO_PARTICIPANT = "ada"  # the participant of workflows/tournaments/examples/*


@dataclass
class Setup:
    tournament: str
    secret: Path | None = None  # None: the spec scores on no private data
    secret_created: bool = False
    participant: str | None = None
    key: Path | None = None  # the demo participant's private key
    fingerprint: str | None = None
    registered: bool = False  # False: it was registered before


def demo_key(tid: str, participant: str) -> Path:
    return private.organiser_dir() / tid / "demo" / f"{participant}.key"


def init(repo: Path, t: Tournament, demo: str | None = None) -> Setup:
    """The secret (when the spec has private steps) and, with `demo`, that participant's
    key pair and registration; what exists already is kept."""
    out = Setup(t.id)
    if t.private is not None:
        out.secret = private.secret_file(t.id)
        if not out.secret.is_file():
            private.init_secret(repo, t.id)
            out.secret_created = True
    if demo is None:
        return out
    if t.identity != "keys":
        raise BadInput(t.file, "$.identity", "a keyed tournament for --demo (mode: keys)", "mode: open (anyone may submit unsigned)")  # fmt: skip
    key = demo_key(t.id, demo)
    if key.resolve().is_relative_to(repo.resolve()):
        raise BadInput(f"${private.ENV_VAR}", "$", "a folder outside the repo (a private key must never be committed)", str(key))  # fmt: skip
    if not key.is_file():
        key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity.generate(key)
    pub = Path(f"{key}.pub").read_text()
    from efflab.tournaments.submit import participants_file

    reg = identity.Registry(participants_file(repo, t))
    known = reg.load().get(demo)
    fp = identity.fingerprint(identity.parse_public(pub, f"{key}.pub"))
    if known is not None and known.fingerprint != fp:
        raise BadInput(reg.path, f"$.{demo}", f"'{demo}' unregistered or registered with the demo key {fp} (pick another name: --demo NAME)", f"registered with key {known.fingerprint}")  # fmt: skip
    if known is None:
        reg.register(demo, pub)
    out.participant, out.key, out.fingerprint, out.registered = demo, key, fp, known is None
    return out
