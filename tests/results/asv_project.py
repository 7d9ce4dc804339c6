"""Make a tiny asv project and let real asv benchmark a few of its commits (a test helper).

    python asv_project.py ASV_BIN FOLDER COMMITS SLOW_FROM

Commit i (1-based) of `tinypkg.work` does the same sum; from commit SLOW_FROM on it
does it ten times (a real 10x slowdown for asv to measure). asv runs with
`environment_type: existing` (no environment is built) and `--set-commit-hash`, so
each commit's results are stored under that commit, as a CI would store them.
"""

import os
import subprocess
import sys
from pathlib import Path

asv, folder, commits, slow_from = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
folder.mkdir(parents=True)
(folder / "benchmarks").mkdir()
(folder / "asv.conf.json").write_text("""{
    // asv reads this as JSON5: comments are allowed
    "version": 1,
    "project": "tinypkg",
    "project_url": "https://example.invalid/tinypkg",
    "repo": ".",
    "branches": ["master"],
    "environment_type": "existing",
    "benchmark_dir": "benchmarks",
    "results_dir": "results",
}
""")
(folder / "benchmarks" / "__init__.py").write_text("")
(folder / "benchmarks" / "benchmarks.py").write_text("""
import os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinypkg


class TimeWork:
    params = [20000, 40000]
    param_names = ["n"]

    def time_work(self, n):
        tinypkg.work(n)


def track_answer():
    return tinypkg.work(10) % 97


track_answer.unit = "answers"
""")
env = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}
subprocess.run(["git", "init", "-q", "-b", "master", str(folder)], check=True)
subprocess.run(
    [asv, "machine", "--yes", "--machine", "testbox"], cwd=folder, check=True, capture_output=True
)
for i in range(1, commits + 1):
    reps = 10 if i >= slow_from else 1
    (folder / "tinypkg.py").write_text(
        f"def work(n):\n    # commit {i}\n    return [sum(j * j for j in range(n)) for _ in range({reps})][0]\n"
    )
    day = f"2026-01-{i:02d}T12:00:00Z"
    subprocess.run(["git", "add", "-A"], cwd=folder, check=True)
    subprocess.run(
        ["git", "commit", "-qm", f"commit {i}"],
        cwd=folder,
        check=True,
        env={**env, "GIT_AUTHOR_DATE": day, "GIT_COMMITTER_DATE": day},
    )
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run(
        [
            asv,
            "run",
            "--environment",
            "existing",
            "--set-commit-hash",
            head,
            "--machine",
            "testbox",
            "--quick",
            "--show-stderr",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
