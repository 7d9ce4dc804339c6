"""The coverage map stays current and honest (CI runs this).

Why: COVERAGE.md is generated from data; if someone adds a paper spec, edits the
category data or the seed list without regenerating, readers would see a stale map.
These tests regenerate in memory and compare, and check the loader rejects the
mistakes the map exists to prevent (a seed paper missing, listed twice, a spec that
does not ship).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from efflab.core.errors import BadInput
from efflab.papers import coverage

REPO = Path(__file__).resolve().parents[2]
SHARED_SEED = next(
    (p / "shared" / "papers-seed.txt" for p in REPO.parents if (p / "shared").is_dir()),
    REPO.parent / "shared" / "papers-seed.txt",
)


def test_coverage_md_is_current() -> None:
    cov = coverage.load(REPO)
    assert coverage.is_current(REPO, cov), "run `efflab papers coverage` and commit COVERAGE.md"


def test_every_seed_paper_once_and_reproduced_specs_ship() -> None:
    cov = coverage.load(REPO)
    titles = coverage.seed_titles(cov.seed)
    assert len(titles) == 58 and len(cov.entries) == len(set(titles))
    assert sum(cov.counts().values()) == len(cov.entries)
    shipped = {p.stem for p in (REPO / "workflows" / "papers").glob("*.yaml")}
    for e in cov.entries:
        assert e.why
        if e.category == "reproduced":
            assert e.detail in shipped


@pytest.mark.skipif(not SHARED_SEED.is_file(), reason="no ../shared/papers-seed.txt here")
def test_seed_copy_matches_shared_list() -> None:
    copy = REPO / "workflows" / "papers" / "coverage" / "papers-seed.txt"
    assert coverage.seed_titles(copy) == coverage.seed_titles(SHARED_SEED)


def _project(tmp_path: Path, mutate) -> Path:
    dst = tmp_path / "proj"
    (dst / "workflows").mkdir(parents=True)
    shutil.copytree(REPO / "workflows" / "papers", dst / "workflows" / "papers")
    f = coverage.data_file(dst)
    raw = yaml.safe_load(f.read_text())
    mutate(raw)
    f.write_text(yaml.safe_dump(raw, sort_keys=False))
    return dst


def test_missing_paper_is_bad_input(tmp_path: Path) -> None:
    repo = _project(tmp_path, lambda r: r["papers"].pop(3))
    with pytest.raises(BadInput) as e:
        coverage.load(repo)
    assert e.value.path == "$.papers" and "NanoFlow" in str(e.value.found)


def test_duplicate_and_unknown_spec_are_bad_input(tmp_path: Path) -> None:
    repo = _project(tmp_path, lambda r: r["papers"].append(dict(r["papers"][0])))
    with pytest.raises(BadInput, match="each paper once"):
        coverage.load(repo)

    def bad_spec(r):
        r["papers"][2].update(category="reproduced", spec="no-such-spec")
        r["papers"][2].pop("needs", None)

    with pytest.raises(BadInput) as e:
        coverage.load(_project(tmp_path / "b", bad_spec))
    assert e.value.path == "$.papers[2].spec"


def test_cli_check_fails_on_stale_map(tmp_path: Path) -> None:
    repo = _project(tmp_path, lambda r: None)
    (repo / "Snakefile").write_text("")
    (repo / "workflows" / "papers" / "COVERAGE.md").write_text("stale\n")
    cmd = [sys.executable, "-m", "efflab", "--repo", str(repo), "papers", "coverage"]
    stale = subprocess.run([*cmd, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "not current" in stale.stderr
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0
    again = subprocess.run([*cmd, "--check"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
