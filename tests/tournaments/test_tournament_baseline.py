"""`efflab tournament baseline` for real: optimize over a keyed tiny tournament's space
(trials on the host through the pipeline), the best entry signed as `organiser`,
verified sealed in Docker, in the ledger and marked on the leaderboard."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import efflab, make_tiny_repo
from tournament_tiny import add_tiny_tournament

from efflab.tournaments.ledger import verify

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.docker


@pytest.fixture
def keyed(tmp_path: Path, docker_engine) -> Path:
    repo = make_tiny_repo(tmp_path / "proj")
    shutil.copytree(REPO / "envs/base", repo / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    add_tiny_tournament(repo, identity={"mode": "keys"})
    efflab(repo, "env", "build", "base", timeout=1500, check=True)
    return repo


def test_baseline_is_signed_verified_and_marked(keyed: Path, tmp_path: Path) -> None:
    r = efflab(
        keyed, "tournament", "baseline", "tiny", "--trials", "3", "--seed", "0",
        "--runtime", "host", "--cores", "2", "--json", timeout=900,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    e = out["ledger_entry"]
    assert e["verdict"] == "accepted" and e["submission"]["participant"] == "organiser"
    assert e["submission"]["entry"] == "baseline-optimize"
    assert e["metrics"]["error"] <= 0.05  # the tournament's constraint
    assert out["optimize"]["trials_finished"] == 3
    # signed by the organiser's registered key (made and registered on first use)
    reg = json.loads((keyed / "results/tournaments/tiny/participants.json").read_text())
    assert e["submission"]["key"] == reg["organiser"]["fingerprint"]
    assert (keyed / ".efflab/keys/tiny/organiser.pem").stat().st_mode & 0o077 == 0
    assert verify(keyed / "results/tournaments/tiny/ledger.jsonl").ok
    board = json.loads(efflab(keyed, "tournament", "leaderboard", "tiny", "--json", check=True).stdout)  # fmt: skip
    (row,) = board["entries"]
    assert row["baseline"] is True and row["participant"] == "organiser"
    text = efflab(keyed, "tournament", "leaderboard", "tiny", check=True).stdout
    assert "organiser (baseline)" in text
    # another key for 'organiser' is refused before any trial runs
    other = tmp_path / "other.pem"
    efflab(keyed, "tournament", "keygen", str(other), check=True)
    r = efflab(keyed, "tournament", "baseline", "tiny", "--trials", "3", "--key", str(other),
               "--runtime", "host")  # fmt: skip
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith("efflab: error: --key") and "Traceback" not in r.stderr
    assert len(board["entries"]) == 1 and "baseline: trial" not in r.stdout
