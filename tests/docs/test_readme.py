"""README.md's first-hour tutorial, run verbatim in a fresh copy of the repository:
script → experiment → table → claim → site, every ```sh block of the section in order
under `set -euo pipefail`. Also the README's own promise of at most 200 lines."""

from __future__ import annotations

import json
import time
from pathlib import Path

from readme_blocks import REPO, fresh_clone, run_blocks, section_blocks, shell_env

TUTORIAL = "Your first hour"


def test_readme_is_a_front_door() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    for link in ("docs/usage.md", "docs/papers.md", "docs/performance.md", "docs/tournaments.md"):
        assert (REPO / link).is_file(), link


def test_the_tutorial_runs_verbatim(tmp_path: Path) -> None:
    blocks = section_blocks(TUTORIAL)
    assert len(blocks) >= 5 and "efflab site build" in blocks[-1]
    clone = fresh_clone(tmp_path / "clone")
    t0 = time.monotonic()
    r = run_blocks(blocks, clone, shell_env(clone), timeout=900)
    wall = time.monotonic() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    print(f"tutorial wall time: {wall:.0f} s")
    # what the README says each step shows
    assert "| n | elapsed_s [s] |" in r.stdout  # the wide table: inputs by name, one column
    assert "records" in r.stdout and "contended" in r.stdout  # run's contention line
    verdicts = json.loads(next((clone / "results/reproductions/my-claim").glob("*/verdicts.json")).read_text())  # fmt: skip
    claims = verdicts["claims"] if isinstance(verdicts, dict) else verdicts
    assert [c["verdict"] for c in claims] == ["reproduced"]
    rec = json.loads(next((clone / "results/my-sweep/runs").glob("*.json")).read_text())
    git = rec["provenance"]["git"]  # the new script is uncommitted: dirty, and why
    assert git["dirty"] is True and "scripts/my-probe/run.py" in git["dirty_files"]
    manifest = json.loads((clone / "results/my-sweep/tables/v1/manifest.json").read_text())
    assert manifest["interval"]["method"] == "bootstrap-percentile"
    assert (clone / "results/site/index.html").is_file()
    # the pages link each other: experiment <-> script <-> paper
    page = (clone / "results/site/experiments/my-sweep.html").read_text()
    assert "href='../scripts/my-probe.html'" in page and "href='../papers/my-claim.html'" in page
    assert "href='../experiments/my-sweep.html'" in (clone / "results/site/papers/my-claim.html").read_text()  # fmt: skip
    assert "efflab run my-sweep --set n=800000" in page
