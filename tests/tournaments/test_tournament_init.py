"""Entering a keyed tournament from the README: `tournament init T --demo` makes the
organiser's secret and a registered demo participant; `submit --key` signs in memory;
a submission from a name nobody registered is answered, never a ledger line.
No container runs here: identity is settled before anything is measured."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from tournament_tiny import add_tiny_tournament, submission

from efflab.tournaments import identity, signing
from efflab.tournaments.spec import load_tournament
from tests.conftest import efflab


@pytest.fixture
def keyed(tiny_repo: Path, tmp_path: Path) -> tuple[Path, dict]:
    add_tiny_tournament(tiny_repo, identity={"mode": "keys"})
    return tiny_repo, {"EFFLAB_ORGANISER_DIR": str(tmp_path / "organiser")}


def test_init_demo_registers_a_key_outside_the_repo_once(keyed) -> None:
    repo, env = keyed
    r = efflab(repo, "tournament", "init", "tiny", "--demo", "--json", env=env, check=True)
    st = json.loads(r.stdout)
    key = Path(st["key"])
    assert st["participant"] == "ada" and st["registered"] is True
    assert key.is_file() and not key.resolve().is_relative_to(repo.resolve())
    assert os.stat(key).st_mode & 0o077 == 0
    reg = json.loads((repo / "results/tournaments/tiny/participants.json").read_text())
    assert reg["ada"]["fingerprint"] == st["fingerprint"]
    again = json.loads(efflab(repo, "tournament", "init", "tiny", "--demo", "--json", env=env,
                              check=True).stdout)  # fmt: skip
    assert again["registered"] is False and again["fingerprint"] == st["fingerprint"]
    # the demo key signs what submit digests: the registry accepts it for ada
    f = submission(repo.parent / "subs", "deg3", 3, participant="ada")
    text = signing.signature(repo, "tiny", f, key)[0]
    msg = identity.message("tiny", __import__("hashlib").sha256(f.read_bytes()).hexdigest(), None)
    reg_obj = identity.Registry(repo / "results/tournaments/tiny/participants.json")
    assert reg_obj.check("ada", msg, text.encode()).fingerprint == st["fingerprint"]


def test_init_refuses_a_name_registered_with_another_key(keyed, tmp_path: Path) -> None:
    repo, env = keyed
    identity.generate(tmp_path / "real-ada")
    efflab(repo, "tournament", "register", "tiny", "ada", str(tmp_path / "real-ada.pub"),
           env=env, check=True)  # fmt: skip
    r = efflab(repo, "tournament", "init", "tiny", "--demo", env=env)
    assert r.returncode == 2 and "participants.json" in r.stderr and "$.ada" in r.stderr
    ok = efflab(repo, "tournament", "init", "tiny", "--demo", "bea", "--json", env=env, check=True)
    assert json.loads(ok.stdout)["participant"] == "bea"


def test_demo_needs_a_keyed_tournament(tiny_repo: Path, tmp_path: Path) -> None:
    add_tiny_tournament(tiny_repo)  # identity: open
    r = efflab(tiny_repo, "tournament", "init", "tiny", "--demo",
               env={"EFFLAB_ORGANISER_DIR": str(tmp_path / "o")})  # fmt: skip
    assert r.returncode == 2 and "$.identity" in r.stderr


def test_an_unregistered_participant_is_answered_not_recorded(keyed) -> None:
    from efflab.tournaments.submit import attempt

    repo, env = keyed
    os.environ["EFFLAB_ORGANISER_DIR"] = env["EFFLAB_ORGANISER_DIR"]
    try:
        t = load_tournament(repo, "tiny")
        f = submission(repo.parent / "subs", "deg3", 3, participant="nobody")
        v = attempt(repo, t, f)
    finally:
        del os.environ["EFFLAB_ORGANISER_DIR"]
    assert not v.accepted and not v.recorded and v.stage == "identity"
    assert "'nobody' has no registered key" in v.reason and "init TOURNAMENT --demo" in v.reason
    ledger = repo / "results/tournaments/tiny/ledger.jsonl"
    assert not ledger.exists() or ledger.read_text() == ""
    assert not any((repo / "results/tournaments/tiny/submissions").iterdir())
