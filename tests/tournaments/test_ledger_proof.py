"""The ledger proves who submitted and in what order (#31 item 3), without Docker.

Each forgery is appended the way an attacker would: with efflab's own ledger code
(`Ledger.append`), with or without the organiser's key, with real Ed25519 signatures.
`verify-ledger` must exit 1 naming the forged entry, and the leaderboard must not rank
it. The honest path (registrations, a revocation, real attempts through `attempt`)
keeps verifying; the honest *accepted* path, which needs a sealed run, is in
test_hostile_entries.py (Docker).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tournament_tiny import add_tiny_tournament, submission

from efflab.tournaments import identity, organiser
from efflab.tournaments.leaderboard import build
from efflab.tournaments.ledger import Ledger
from efflab.tournaments.spec import load_tournament
from efflab.tournaments.submit import attempt


@pytest.fixture
def keyed(tiny_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny tournament, keyed, with ana and bo registered by the organiser."""
    monkeypatch.setenv("EFFLAB_ORGANISER_DIR", str(tmp_path / "organiser"))
    add_tiny_tournament(tiny_repo, identity={"mode": "keys"})
    reg = identity.Registry(tiny_repo / "results/tournaments/tiny/participants.json")
    for who in ("ana", "bo"):
        k = identity.generate(tmp_path / who)
        reg.register(who, k.public_b64)
    return tiny_repo


def lines(repo: Path) -> list[dict]:
    return [json.loads(x) for x in (repo / "results/tournaments/tiny/ledger.jsonl").read_text().splitlines()]  # fmt: skip


def verify_cli(run_efflab, repo: Path, *extra: str):
    r = run_efflab(repo, "tournament", "verify-ledger", "tiny", *extra)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def forged(repo: Path, key_file: Path | None, participant: str = "ana", **over) -> dict:
    """An accepted attempt as a forger writes it: a stored file, its digest, a signature
    by `key_file` over the real digests, metrics with matching repetitions."""
    t = load_tournament(repo, "tiny")
    sid = "forged-" + participant
    folder = t.root(repo) / "submissions" / sid
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"participant": participant, "entry": "fast", "inputs": {"degree": 3}}).encode()  # fmt: skip
    (folder / "submission.yaml").write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    fields = identity.signed_fields("tiny", sha, None)
    sig, fp = None, None
    if key_file is not None:
        priv = identity.load_private(key_file)
        sig = identity.sign(priv, identity.message_bytes(fields))
        fp = identity.fingerprint(priv.public_key().public_bytes_raw())
    lat = [1e-8, 1e-8]
    body = {
        "time": datetime.now(UTC).isoformat(),
        "tournament": "tiny",
        "tournament_sha256": t.spec_sha256,
        "scoring_sha256": t.scoring_sha256,
        "submission": {"id": sid, "participant": participant, "entry": "fast", "key": fp,
                       "signature": sig, "signed": fields, "file": f"submissions/{sid}/submission.yaml",
                       "sha256": sha, "archive": None, "archive_sha256": None,
                       "inputs": {"degree": 3}, "claimed": {}},
        "verdict": "accepted", "stage": None, "reason": None,
        "metrics": {"error": 0.001, "eval_us": 1e-8},
        "repetitions": {"error": [0.001, 0.001], "eval_us": lat},
        "intervals": {}, "flags": [],
        "verification": {"runtime": "docker", "repetitions": 2, "aggregate": "median", "keys": []},
    }  # fmt: skip
    for k, v in over.items():
        if k in body["submission"]:
            body["submission"][k] = v
        else:
            body[k] = v
    return body


def refused_seqs(repo: Path) -> set[int]:
    b = build(repo, load_tournament(repo, "tiny"))
    assert not b["entries"]  # nothing forged is ranked
    return {r["seq"] for r in b["refused"]}


def test_honest_ledger_verifies(keyed: Path, tmp_path: Path, run_efflab) -> None:
    es = lines(keyed)
    assert [e.get("kind") for e in es] == ["organiser", "register", "register"]
    org = organiser.load("tiny")
    assert org is not None and es[0]["fingerprint"] == org.fingerprint
    assert all(organiser.verify_head(org.public_b64, e["hash"], e["head_sig"]) for e in es)
    # real attempts through the real flow that stop before the sealed run
    t = load_tournament(keyed, "tiny")
    subs = tmp_path / "subs"
    f = submission(subs, "unsigned", 3, participant="ana")
    v = attempt(keyed, t, f)
    assert v.verdict == "rejected" and v.stage == "identity"
    f2 = submission(subs, "late", 3, participant="bo")
    v2 = attempt(keyed, t, f2, now=datetime(2100, 1, 1, tzinfo=UTC))
    assert v2.stage == "window"
    r = verify_cli(run_efflab, keyed)
    assert r.returncode == 0, r.stderr
    assert "5 entries verify" in r.stdout
    # revocation is a signed entry too; the readable view follows the ledger
    assert run_efflab(keyed, "tournament", "revoke", "tiny", "bo").returncode == 0
    view = json.loads((keyed / "results/tournaments/tiny/participants.json").read_text())
    assert set(view) == {"ana"}
    j = json.loads(verify_cli(run_efflab, keyed, "--json").stdout)
    assert j["ok"] and j["entries"] == 6 and j["head_sig"] == lines(keyed)[-1]["head_sig"]
    # the published head and an older organiser-signed head both pass --expect-head
    assert verify_cli(run_efflab, keyed, "--expect-head", j["head"]).returncode == 0
    assert verify_cli(run_efflab, keyed, "--expect-head", lines(keyed)[2]["hash"]).returncode == 0  # fmt: skip
    pub = tmp_path / "organiser.pub"
    pub.write_text(org.public_b64 + "\n")
    assert verify_cli(run_efflab, keyed, "--organiser-key", str(pub)).returncode == 0


def test_appended_without_the_organiser_key(keyed: Path, tmp_path: Path, run_efflab) -> None:
    Ledger(keyed / "results/tournaments/tiny/ledger.jsonl").append(forged(keyed, tmp_path / "ana"))
    r = verify_cli(run_efflab, keyed)
    assert r.returncode == 1
    assert "entry 3 (line 4): not signed by the organiser" in r.stderr
    assert refused_seqs(keyed) == {3}


def test_unregistered_key(keyed: Path, tmp_path: Path, run_efflab) -> None:
    """Appended on the organiser's own machine (the head is signed): the key isn't ana's."""
    identity.generate(tmp_path / "mallory")
    root = keyed / "results/tournaments/tiny"
    organiser.tournament_ledger(root, "tiny").append(forged(keyed, tmp_path / "mallory"))
    r = verify_cli(run_efflab, keyed)
    assert r.returncode == 1
    assert "entry 3 (line 4): names key" in r.stderr and "registered with" in r.stderr
    organiser.tournament_ledger(root, "tiny").append(forged(keyed, tmp_path / "mallory", participant="zed"))  # fmt: skip
    r = verify_cli(run_efflab, keyed)
    assert "entry 4 (line 5): signed as 'zed', who had no registered key" in r.stderr
    assert refused_seqs(keyed) == {3, 4}


def test_null_digests(keyed: Path, tmp_path: Path, run_efflab) -> None:
    root = keyed / "results/tournaments/tiny"
    organiser.tournament_ledger(root, "tiny").append(forged(keyed, tmp_path / "ana", sha256=None))
    r = verify_cli(run_efflab, keyed)
    assert r.returncode == 1
    assert "entry 3 (line 4): accepted without the sha256 of its submission file" in r.stderr


def test_absurd_latency(keyed: Path, tmp_path: Path, run_efflab) -> None:
    """ana's real signature over real digests, but 0.01 µs that no run measured."""
    root = keyed / "results/tournaments/tiny"
    led = organiser.tournament_ledger(root, "tiny")
    led.append(forged(keyed, tmp_path / "ana"))
    r = verify_cli(run_efflab, keyed)
    assert r.returncode == 1
    assert "entry 3 (line 4): accepted without the keys of the runs that measured it" in r.stderr
    led.append(forged(keyed, tmp_path / "ana", verification={"runtime": "docker", "repetitions": 2, "aggregate": "median", "keys": ["abc123"]}))  # fmt: skip
    r = verify_cli(run_efflab, keyed)
    assert "entry 4 (line 5): the run record runs/abc123.json it names is missing" in r.stderr
    led.append(forged(keyed, tmp_path / "ana", metrics={"error": 0.001, "eval_us": 1e-9}))
    r = verify_cli(run_efflab, keyed)
    assert "entry 5 (line 6): eval_us = 1e-09 is not the median of its repetitions" in r.stderr
    assert refused_seqs(keyed) == {3, 4, 5}


def test_signature_edited_or_over_other_digests(keyed: Path, tmp_path: Path, run_efflab) -> None:
    root = keyed / "results/tournaments/tiny"
    led = organiser.tournament_ledger(root, "tiny")
    body = forged(keyed, tmp_path / "ana")
    body["submission"]["signed"] = identity.signed_fields("tiny", "0" * 64, None)
    led.append(body)
    body = forged(keyed, tmp_path / "ana", signature=base64.b64encode(b"x" * 64).decode())
    led.append(body)
    body = forged(keyed, tmp_path / "ana", signature=None)
    led.append(body)
    err = verify_cli(run_efflab, keyed).stderr
    assert "entry 3 (line 4): the signed digests are not the digests this entry records" in err
    assert "entry 4 (line 5): the stored signature does not verify with 'ana''s key" in err
    assert "entry 5 (line 6): no stored signature" in err


def test_revoked_key_no_longer_signs(keyed: Path, tmp_path: Path, run_efflab) -> None:
    root = keyed / "results/tournaments/tiny"
    identity.Registry(root / "participants.json").revoke("ana")
    organiser.tournament_ledger(root, "tiny").append(forged(keyed, tmp_path / "ana"))
    r = verify_cli(run_efflab, keyed)
    assert "entry 4 (line 5): signed as 'ana', who had no registered key at that point" in r.stderr


def test_rewritten_under_another_organiser_key(keyed: Path, tmp_path: Path, run_efflab, monkeypatch) -> None:  # fmt: skip
    head = lines(keyed)[-1]["hash"]
    root = keyed / "results/tournaments/tiny"
    (root / "ledger.jsonl").unlink()
    other = tmp_path / "other-organiser"
    monkeypatch.setenv("EFFLAB_ORGANISER_DIR", str(other))
    identity.Registry(root / "participants.json").register("ana", base64.b64encode(b"\1" * 32).decode())  # fmt: skip
    # with the forger's key it verifies ...
    assert verify_cli(run_efflab, keyed).returncode == 0
    # ... but not against the real organiser's key, nor the published head
    monkeypatch.setenv("EFFLAB_ORGANISER_DIR", str(tmp_path / "organiser"))
    r = verify_cli(run_efflab, keyed)
    assert r.returncode == 1 and "the ledger was rewritten under another key" in r.stderr
    r = verify_cli(run_efflab, keyed, "--expect-head", head)
    assert r.returncode == 1
    # and the real organiser's efflab refuses to append to it
    with pytest.raises(Exception, match="only the organiser's machine appends"):
        identity.Registry(root / "participants.json").register("bo", base64.b64encode(b"\2" * 32).decode())  # fmt: skip


def test_expect_head_must_be_signed(keyed: Path, tmp_path: Path, run_efflab) -> None:
    Ledger(keyed / "results/tournaments/tiny/ledger.jsonl").append({"kind": "register", "participant": "x"})  # fmt: skip
    head = lines(keyed)[-1]["hash"]
    r = verify_cli(run_efflab, keyed, "--expect-head", head)
    assert r.returncode == 1 and "is an entry the organiser did not sign" in r.stderr
    r = verify_cli(run_efflab, keyed, "--expect-head", "f" * 64)
    assert "is not in the chain" in r.stderr
