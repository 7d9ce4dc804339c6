"""`efflab nightly bisect` on a tiny real git repository with a known bad commit.

Real git (gitpython worktrees), real Snakemake, runner and records: seven commits on
top of a good one, the fourth makes the measured script sleep four times longer. The
bisect must name that commit, reuse the cached invocations of commits whose script
files did not change, and refuse bad options with exit 2 naming the option.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, efflab, write

SUITE = """\
name: tiny-nightly
defaults: {repetitions: 5}
policy:
  default: {alpha: 0.05, min_effect: 0.5}
experiments:
  - name: demo
    overrides: {sleep_s: 0.05}
    metrics: [wall_s, sumsq]
"""


def commit(repo: Path, msg: str) -> str:
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", msg],
        check=True,
    )
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def history_repo(tiny_repo: Path) -> tuple[Path, list[str]]:
    write(tiny_repo / "workflows/nightly.yaml", SUITE)
    write(tiny_repo / ".gitignore", "artifacts/\nresults/\n.efflab/\n.snakemake/\n")
    shas = [commit(tiny_repo, "good: initial")]
    run_py = tiny_repo / "scripts/square/run.py"
    for i in range(1, 8):
        if i == 4:
            run_py.write_text(
                run_py.read_text().replace('(ctx.inputs["sleep_s"])', '(ctx.inputs["sleep_s"] * 4)')
            )
            shas.append(commit(tiny_repo, "square: sleep longer (the culprit)"))
        else:
            write(tiny_repo / "NOTES.md", f"note {i}\n")
            shas.append(commit(tiny_repo, f"notes {i}"))
    return tiny_repo, shas


def test_bisect_finds_the_bad_commit_and_reuses_unchanged_scripts(
    history_repo: tuple[Path, list[str]],
) -> None:
    repo, shas = history_repo
    r = efflab(
        repo, "nightly", "bisect", "demo", "--metric", "wall_s", "--point", "n=2", "scale=1.0",
        "--good", shas[0], "--bad", shas[-1], "--cores", "2", "--runtime", "host", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["first_bad"]["commit"] == shas[4], res["message"]
    assert "culprit" in res["first_bad"]["subject"]
    assert res["direction"] == "regression" and res["commits_in_range"] == 7
    tested = {t["commit"]: t for t in res["tested"]}
    assert len(tested) <= 4  # bad, then ceil(log2(7)) steps
    # commits before the culprit share good's script files: same keys, nothing run
    before = [t for c, t in tested.items() if c in shas[1:4]]
    assert before and all(t["reused"] and t["verdict"] == "good" for t in before)
    measured = [t for t in tested.values() if not t["reused"]]
    assert measured and all(len(t["values"]) == len(t["good_values"]) == 5 for t in measured)
    assert all(t["jobs_run"] >= 5 and t["good_jobs"] >= 5 for t in measured)  # interleaved
    culprit = tested[shas[4]]
    assert culprit["verdict"] == "bad" and (culprit["reused"] or culprit["change"] > 1.0)
    # the worktrees are gone, the shared cache stays
    out = subprocess.run(
        ["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True
    )
    assert len(out.stdout.strip().splitlines()) == 1
    assert (repo / ".efflab/bisect/artifacts").is_dir()


def test_bisect_without_a_difference_exits_1(history_repo: tuple[Path, list[str]]) -> None:
    repo, shas = history_repo
    r = efflab(
        repo, "nightly", "bisect", "demo", "--metric", "wall_s", "--point", "n=2", "scale=1.0",
        "--good", shas[0], "--bad", shas[3], "--runtime", "host",
    )  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "does not differ significantly" in r.stdout


def test_bisect_repetitions_replace_the_suites(history_repo: tuple[Path, list[str]]) -> None:
    repo, shas = history_repo
    r = efflab(
        repo, "nightly", "bisect", "demo", "--metric", "wall_s", "--point", "n=2", "scale=1.0",
        "--good", shas[3], "--bad", shas[4], "--runtime", "host", "--repetitions", "4", "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["first_bad"]["commit"] == shas[4]
    (bad,) = res["tested"]  # one commit in range: bad only
    assert len(bad["values"]) == len(bad["good_values"]) == 4  # the suite says 5


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--good", "nope", "--bad", "HEAD"], "--good"),
        (["--good", "HEAD~7", "--bad", "deadbeef"], "--bad"),
        (["--good", "HEAD", "--bad", "HEAD~7"], "--good"),  # not an ancestor
        (["--good", "HEAD~7", "--bad", "HEAD", "--metric", "nope"], "--metric"),
        (["--good", "HEAD~7", "--bad", "HEAD", "--point", "n=99"], "--point"),
        (["--good", "HEAD~7", "--bad", "HEAD", "--point", "size=1"], "--point"),
        (["--good", "HEAD~7", "--bad", "HEAD", "--point", "n=2"], "--point"),  # 2 points match
        (["--good", "HEAD~7", "--bad", "HEAD", "--repetitions", "x"], "--repetitions"),
        (["--good", "HEAD~7", "--bad", "HEAD", "--repetitions", "0"], "--repetitions"),
        (["--good", "HEAD~7", "--bad", "HEAD", "--repetitions", "101"], "--repetitions"),
        # 7 commits: alpha 0.05 / 4 tests; 3 vs 3 repetitions reach p >= 0.05 at best
        (["--good", "HEAD~7", "--bad", "HEAD", "--repetitions", "3"], "--repetitions"),
    ],
)
def test_bisect_bad_options_exit_2_naming_the_option(
    history_repo: tuple[Path, list[str]], args: list[str], option: str
) -> None:
    repo, _ = history_repo
    base = {"--metric": "wall_s", "--point": ["n=2", "scale=1.0"]}
    argv = ["nightly", "bisect", "demo", *args]
    for k, v in base.items():
        if k not in args:
            argv += [k, *(v if isinstance(v, list) else [v])]
    r = efflab(repo, *argv, "--runtime", "host")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"efflab: error: {option}"), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.docker
def test_bisect_under_docker_uses_each_worktrees_envs(tiny_repo: Path, docker_engine) -> None:
    """The docker runtime finds a commit's env in that commit's worktree (`envs/`),
    not beside the shared artifacts cache (`.efflab/bisect/envs`)."""
    import shutil

    shutil.copytree(REPO / "envs" / "base", tiny_repo / "envs" / "base")
    for alias in ("gen", "square"):
        meta = tiny_repo / f"scripts/{alias}/meta.yaml"
        meta.write_text(meta.read_text().replace('version: "1"\n', 'version: "1"\nenv: base\n'))
    write(tiny_repo / "workflows/nightly.yaml", SUITE)
    write(tiny_repo / ".gitignore", "artifacts/\nresults/\n.efflab/\n.snakemake/\n")
    good = commit(tiny_repo, "good: initial")
    run_py = tiny_repo / "scripts/square/run.py"
    run_py.write_text(
        run_py.read_text().replace('(ctx.inputs["sleep_s"])', '(ctx.inputs["sleep_s"] * 4)')
    )
    culprit = commit(tiny_repo, "square: sleep longer (the culprit)")
    write(tiny_repo / "NOTES.md", "note\n")
    bad = commit(tiny_repo, "notes")
    r = efflab(
        tiny_repo, "nightly", "bisect", "demo", "--metric", "wall_s", "--point", "n=2",
        "scale=1.0", "--good", good, "--bad", bad, "--runtime", "docker", "--repetitions", "4",
        "--json",
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(r.stdout)
    assert res["first_bad"]["commit"] == culprit, res["message"]
    outs = [
        json.loads(f.read_text())
        for f in (tiny_repo / ".efflab/bisect/artifacts/square").glob("*/outputs.json")
    ]
    assert outs and all(o["runtime"] == "docker" and o["image"] for o in outs)
