"""Publishing table versions to a git results repository (real git via gitpython)."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pandas as pd
import pytest

from efflab.cli import main
from efflab.core.errors import BadInput
from efflab.results import tables
from efflab.results.publish import history, publish, published_table


def project(root: Path) -> Path:
    """A project with two table versions of `demo` and one of `other`."""
    (root / "workflows").mkdir(parents=True)
    (root / "Snakefile").write_text("# test project\n")
    for exp, medians in (("demo", [1.0, 2.0]), ("other", [5.0])):
        for i, med in enumerate(medians):
            df = pd.DataFrame(
                {"size": [1], "metric": ["wall_ms"], "unit": ["ms"], "better": ["lower"],
                 "n": [3], "mean": [med], "median": [med]}
            )  # fmt: skip
            tables.save(root, exp, df, "c0ffee", {"run_id": f"run-{i}"})
    return root


def tags(repo: Path) -> set[str]:
    return {t.name for t in git.Repo(repo).tags}


def test_publish_commits_and_tags_then_is_idempotent(tmp_path: Path) -> None:
    proj = project(tmp_path / "proj")
    dest = tmp_path / "results-repo"  # absent: created
    res = publish(proj, ["demo", "other"], dest)
    assert res.created and res.commit
    assert tags(dest) == {"demo/v1", "demo/v2", "other/v1"}
    r = git.Repo(dest)
    assert len(list(r.iter_commits())) == 1  # one commit per publish
    assert (dest / "demo/v2/table.csv").is_file() and (dest / "README.md").is_file()
    assert not r.is_dirty(untracked_files=True)
    head = r.head.commit.hexsha

    again = publish(proj, ["demo", "other"], dest)
    assert again.commit is None and again.tags == []
    assert sorted(again.unchanged) == ["demo/v1", "demo/v2", "other/v1"]
    assert git.Repo(dest).head.commit.hexsha == head and tags(dest) == {
        "demo/v1",
        "demo/v2",
        "other/v1",
    }

    # a new version: one more commit, only its tag
    df, _ = tables.load(proj, "demo", 2)
    df["median"] = 3.0
    assert tables.save(proj, "demo", df, "c0ffee", {"run_id": "run-3"}) == (3, True)
    third = publish(proj, ["demo"], dest)
    assert third.tags == ["demo/v3"] and len(list(git.Repo(dest).iter_commits())) == 2


def test_history_reads_published_versions_back(tmp_path: Path) -> None:
    proj = project(tmp_path / "proj")
    dest = tmp_path / "res"
    publish(proj, ["demo"], dest, versions={"demo": [1]})
    publish(proj, ["demo"], dest)
    rows = history(dest, "demo")
    assert [r["version"] for r in rows] == [1, 2]
    assert rows[1]["manifest"]["content_hash"] == tables.manifest(proj, "demo", 2)["content_hash"]
    assert rows[0]["commit"] != rows[1]["commit"]
    assert "wall_ms" in published_table(dest, "demo", 2)
    assert history(dest, "other") == []


def test_conflicting_version_is_refused_not_overwritten(tmp_path: Path) -> None:
    dest = tmp_path / "res"
    publish(project(tmp_path / "a"), ["other"], dest)
    b = tmp_path / "b"
    (b / "workflows").mkdir(parents=True)
    df = pd.DataFrame({"metric": ["wall_ms"], "median": [99.0]})
    tables.save(b, "other", df, None)
    with pytest.raises(BadInput) as exc:
        publish(b, ["other"], dest)
    assert "other/v1" in exc.value.path
    assert len(list(git.Repo(dest).iter_commits())) == 1


def test_folder_that_is_not_a_repository_is_bad_input(tmp_path: Path) -> None:
    proj = project(tmp_path / "proj")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine\n")
    with pytest.raises(BadInput):
        publish(proj, ["demo"], junk)


def test_cli_publish_and_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proj = project(tmp_path / "proj")
    dest = tmp_path / "res"
    argv = ["--repo", str(proj), "results", "publish", "demo", "--repo", str(dest), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == ["demo/v1", "demo/v2"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["commit"] is None and out["tags"] == []
    assert main(["--repo", str(proj), "results", "history", "demo", "--repo", str(dest)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == ["v1", "v2"]
    assert main(["--repo", str(proj), "results", "publish", "nope", "--repo", str(dest)]) == 2
    assert "nope" in capsys.readouterr().err


def test_missing_tag_is_restored_without_an_empty_commit(tmp_path: Path) -> None:
    """An interrupted publish (commit made, tag not) is repaired by publishing again."""
    proj = project(tmp_path / "proj")
    dest = tmp_path / "res"
    publish(proj, ["demo"], dest)
    r = git.Repo(dest)
    r.delete_tag(r.tags["demo/v2"])
    res = publish(proj, ["demo"], dest)
    assert res.tags == ["demo/v2"] and res.commit is None
    assert len(list(r.iter_commits())) == 1 and tags(dest) == {"demo/v1", "demo/v2"}
