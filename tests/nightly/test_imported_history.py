"""Another tool's history as nights: the shared MLPerf CI history (a folder of dated
summary snapshots, and the same snapshots as a git repository of successive
submissions) imported into the nightly history, change points found by the nightly's
own detection (Otava), the dashboard drawn, importing again adds nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, efflab, make_tiny_repo

from efflab.nightly.history import read_history

SHARED = Path(os.environ.get("EFFLAB_SHARED", REPO.parent / "shared")) / "mlperf"
HISTORY = SHARED / "history"
needs_shared = pytest.mark.skipif(not HISTORY.is_dir(), reason=f"no shared MLPerf data at {SHARED}")
TF = "gh_ubuntu-latest_x86-reference-cpu-tf_v2.20.0-default_config"
TF19 = "gh_ubuntu-latest_x86-reference-cpu-tf_v2.19.0-default_config"
RGAT = "gh_ubuntu-latest_x86-reference-cpu-pytorch_v2.4.0-default_config"


def _values(series: Path) -> list[tuple[str, float]]:
    out = []
    for f in sorted(series.iterdir()):
        line = next(ln for ln in f.read_text().splitlines() if ln.startswith("Samples per second"))
        out.append((f.name, float(line.split(":")[1])))
    return out


@needs_shared
def test_shared_history_becomes_nights_with_change_points(tmp_path: Path) -> None:
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "mlperf", str(HISTORY), "--json", timeout=300)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    files = sum(1 for _ in HISTORY.rglob("*.txt"))
    assert out["records_added"] == files == len(out["nights"])  # one commit per snapshot here
    hist = read_history(repo)
    assert [h["night"] for h in hist] == list(range(1, files + 1))
    assert [h["started"] for h in hist] == sorted(h["started"] for h in hist)
    cps = out["change_points"]
    tf = [c for c in cps if c["series"] == f"system={TF}"]
    # tf 2.20.0: ~21 samples/s, a plateau near 39 from 2025-11-26, back to ~21 on 2025-12-02
    assert [(c["date"][:10], c["direction"]) for c in tf] == [
        ("2025-11-26", "improvement"), ("2025-12-02", "regression")]  # fmt: skip
    assert tf[0]["commits"] == "0b9a0ff543..fd6f7e38a7"
    rgat = [c for c in cps if c["series"] == f"system={RGAT}"]
    assert [c["date"][:10] for c in rgat] == ["2025-02-12", "2025-02-12"]
    # single-night spikes are not change points (min_segment 2 and the persistence test)
    for series in HISTORY.glob("*/*/*"):
        vals = _values(series)
        label = f"system={series.parent.parent.name}"
        mine = {
            c["date"]
            for c in cps
            if c["series"] == label and c["experiment"].endswith(series.parent.name + "-offline")
        }
        for i in range(1, len(vals) - 1):
            prev, cur, nxt = vals[i - 1][1], vals[i][1], vals[i + 1][1]
            if (
                abs(cur - prev) > 0.3 * prev
                and abs(cur - nxt) > 0.3 * nxt
                and abs(prev - nxt) < 0.1 * prev
            ):
                day = vals[i][0][:10]
                assert not any(d.startswith(day) for d in mine), (series, vals[i])
    # the change points are stored in the series' last night, where a nightly keeps them
    stored = [
        c
        for h in hist
        for c in h["experiments"].get("mlperf-resnet50-offline", {}).get("change_points", [])
    ]
    assert len(stored) == sum(1 for c in cps if c["experiment"] == "mlperf-resnet50-offline")
    dash = repo / "results" / "nightly" / str(files)
    assert (dash / "index.html").is_file() and (dash / "summary.json").is_file()
    again = efflab(
        repo, "results", "import", "--format", "mlperf", str(HISTORY), "--json", timeout=300
    )
    second = json.loads(again.stdout)
    assert (
        second["records_added"] == 0 and second["nights"] == [] and len(read_history(repo)) == files
    )


def _git_history(root: Path, series: list[Path]) -> Path:
    """The snapshots as successive commits of a submission tree, dated as they were."""
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    snaps = sorted((f.name, s, f) for s in series for f in s.iterdir())
    env = {**os.environ, "GIT_AUTHOR_NAME": "ci", "GIT_AUTHOR_EMAIL": "ci@example.invalid",
           "GIT_COMMITTER_NAME": "ci", "GIT_COMMITTER_EMAIL": "ci@example.invalid"}  # fmt: skip
    for name, s, f in snaps:
        system, bench, scen = s.parent.parent.name, s.parent.name, s.name
        d = (
            root
            / "open"
            / "MLCommons"
            / "results"
            / system
            / bench
            / scen
            / "performance"
            / "run_1"
        )
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, d / "mlperf_log_summary.txt")
        date = f"{name[:10]}T{name[11:13]}:{name[13:15]}:{name[15:17]}Z"
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(root), "commit", "-qm", name], check=True,
                       env={**env, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})  # fmt: skip
    return root


@needs_shared
def test_git_repository_of_submissions_imports_like_the_snapshot_folder(tmp_path: Path) -> None:
    series = [HISTORY / TF / "resnet50" / "offline", HISTORY / TF19 / "resnet50" / "offline"]
    gitrepo = _git_history(tmp_path / "ci", series)
    folder = tmp_path / "snaps"
    for s in series:
        shutil.copytree(s, folder / s.relative_to(HISTORY))
    a, b = make_tiny_repo(tmp_path / "a"), make_tiny_repo(tmp_path / "b")
    ra = efflab(a, "results", "import", "--format", "mlperf", str(gitrepo), "--json")
    rb = efflab(b, "results", "import", "--format", "mlperf", str(folder), "--json")
    assert ra.returncode == 0 and rb.returncode == 0, (ra.stderr, rb.stderr)
    ga, gb = json.loads(ra.stdout), json.loads(rb.stdout)
    assert len(ga["nights"]) == len(gb["nights"]) == 58 + 64

    def pick(cs):
        return [(c["series"], c["date"], c["direction"], round(c["mean_after"], 6)) for c in cs]  # noqa: E731

    assert pick(ga["change_points"]) == pick(gb["change_points"]) and ga["change_points"]
    # the git import names the repository's own commits
    head = subprocess.run(["git", "-C", str(gitrepo), "log", "--format=%H"], capture_output=True,
                          text=True, check=True).stdout.split()  # fmt: skip
    assert {n["commit"] for n in ga["nights"]} == set(head)


def test_git_history_with_a_symlinked_summary_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ci"
    d = root / "open" / "Lab" / "results" / "box" / "resnet50" / "Offline" / "performance" / "run_1"
    d.mkdir(parents=True)
    (d / "mlperf_log_summary.txt").symlink_to("/etc/passwd")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@e.invalid",
                    "commit", "-qm", "x"], check=True)  # fmt: skip
    repo = make_tiny_repo(tmp_path / "proj")
    r = efflab(repo, "results", "import", "--format", "mlperf", str(root))
    assert (
        r.returncode == 2 and "symbolic link" in r.stderr and "mlperf_log_summary.txt" in r.stderr
    )
    assert not (repo / "results" / "nightly").exists()
