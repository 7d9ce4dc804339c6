"""README.md's tournament example, run verbatim on real Docker in a fresh copy of the
repository, as a new user with an empty home folder would: `init --demo`, `submit
--key`, `leaderboard` — no secret, key or registration made beforehand.

For CI time only, the copy's edge-digits spec is made cheaper the way
tests/tournaments/test_edge_private_docker.py does (one repetition, a short timed
loop); the commands are the README's, character for character."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from readme_blocks import fresh_clone, run_blocks, section_blocks, shell_env

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_the_tournament_example_runs_verbatim(tmp_path: Path, docker_engine) -> None:
    blocks = section_blocks("A tournament in two commands")
    assert len(blocks) == 1 and "--demo" in blocks[0]
    clone = fresh_clone(tmp_path / "clone")
    spec_file = clone / "workflows/tournaments/edge-digits.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    spec["base"]["inputs"].update(runs=100, warmup=10)  # the timed loop is not under test
    spec["verification"]["repetitions"] = 1
    spec_file.write_text(yaml.safe_dump(spec))
    home = tmp_path / "home"
    home.mkdir()
    r = run_blocks(blocks, clone, shell_env(clone, HOME=str(home)), timeout=3000)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (home / ".config/efflab/organiser/edge-digits/demo/ada.key").is_file()
    lines = (clone / "results/tournaments/edge-digits/ledger.jsonl").read_text().splitlines()
    attempts = [json.loads(x) for x in lines if json.loads(x).get("verdict")]
    assert [a["verdict"] for a in attempts] == ["accepted"]
    assert attempts[0]["submission"]["participant"] == "ada"
    assert "ada" in r.stdout and "cnn64-int8-static" in r.stdout  # the leaderboard's row
