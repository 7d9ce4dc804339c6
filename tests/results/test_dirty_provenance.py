"""A record names a commit that holds what it measured, or says it is dirty and why:
an untracked or modified file that the invocation's key hashes (its script, its deps'
scripts) makes it dirty and is listed; other untracked files do not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import efflab


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})  # fmt: skip


def _records(repo: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((repo / "results/demo/runs").glob("*.json"))]


def test_an_untracked_script_makes_the_record_dirty_and_is_named(tiny_repo: Path) -> None:
    _git(tiny_repo, "add", "-A")
    _git(tiny_repo, "commit", "-qm", "tiny")
    (tiny_repo / "notes.txt").write_text("not hashed by any key\n")
    efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "-q", check=True)
    recs = _records(tiny_repo)
    assert recs and all(r["provenance"]["git"]["dirty"] is False for r in recs)
    assert all(r["provenance"]["git"]["dirty_files"] == [] for r in recs)

    # a new file in the dependency's folder (the scaffold's typical untracked helper):
    # every point's key changes, so they run again, and their records say why they are dirty
    (tiny_repo / "scripts/gen/helper.sh").write_text("# a helper not yet committed\n")
    efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "-q", check=True)
    fresh = [r for r in _records(tiny_repo) if r["key"] not in {x["key"] for x in recs}]
    assert len(fresh) == 4
    for r in fresh:
        assert r["provenance"]["git"]["dirty"] is True
        assert r["provenance"]["git"]["dirty_files"] == ["scripts/gen/helper.sh"]
    manifest = json.loads((tiny_repo / "results/demo/tables/v2/manifest.json").read_text())
    assert manifest["git_dirty"] is True
    assert manifest["git_dirty_files"] == ["scripts/gen/helper.sh"]

    # modified (tracked) script file: dirty too, named
    run_py = tiny_repo / "scripts/square/run.py"
    run_py.write_text(run_py.read_text() + "\n# changed\n")
    efflab(tiny_repo, "run", "demo", "--quick", "--runtime", "host", "-q", check=True)
    newest = max(_records(tiny_repo), key=lambda r: r["started"])
    assert newest["provenance"]["git"]["dirty_files"] == [
        "scripts/gen/helper.sh",
        "scripts/square/run.py",
    ]

    # the site shows it beside the commit, with the files
    efflab(tiny_repo, "site", "build", "--out", str(tiny_repo / "site"), "-q", check=True)
    page = next((tiny_repo / "site").rglob("demo*.html")).read_text()
    assert "(dirty): scripts/gen/helper.sh, scripts/square/run.py" in page
