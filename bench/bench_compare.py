"""`efflab compare` on two commits of this repository: an unchanged pair and an injected
slowdown (printed reports, not a test).

Run: PYTHONPATH=src .venv/bin/python bench/bench_compare.py [--slowdown 0.2] [--out DIR]

Builds a throw-away git repository from this project's committed tree (`git archive
HEAD`) with three commits: the base, a documentation edit (nothing measured changes),
and extra work in the measured loop of edge-digits' benchmark (`edgelib.ort.timed_runs`
spins for `--slowdown` of each call's time, as bench_nightly_bisect.py does). Then runs
the real CLI twice, with the repository's own nightly suite (edge-digits: quick, 5
repetitions per arm, 300 timed runs) at one point:

    efflab compare <base> <docs> edge-digits --set model=mlp-1024 precision=fp32
    efflab compare <docs> <slow> edge-digits --set model=mlp-1024 precision=fp32

and prints both Markdown reports, their exit codes and wall times (written to --out).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_nightly_bisect import FAST, ROOT, SLOW, commit, git


def build(repo: Path, slowdown: float) -> list[str]:
    repo.mkdir(parents=True)
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=tar, check=True)
    git(repo, "init", "-q")
    shas = [commit(repo, "base: the project as committed")]
    notes = repo / "docs/bench-notes.md"
    notes.write_text("a documentation edit: nothing measured changes\n")
    shas.append(commit(repo, "docs: a note (nothing measured changes)"))
    ort_py = repo / "scripts/_lib/edge/edgelib/ort.py"
    assert FAST in ort_py.read_text(), "timed_runs changed; update the bench"
    ort_py.write_text(ort_py.read_text().replace(FAST, SLOW.replace("FACTOR", repr(1 + slowdown))))  # fmt: skip
    shas.append(commit(repo, f"edgelib: {slowdown:.0%} more work in each timed call"))
    return shas


def compare(repo: Path, base: str, head: str, cores: int) -> tuple[int, str, float]:
    cmd = [sys.executable, "-m", "efflab", "--repo", str(repo), "compare", base, head]
    cmd += ["edge-digits", "--set", "model=mlp-1024", "precision=fp32", "--runtime", "host"]
    cmd += ["--cores", str(cores), "-q"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    sys.stderr.write(proc.stderr)
    return proc.returncode, proc.stdout, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slowdown", type=float, default=0.2, help="0.2 = 20 %% slower calls")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", default=None, metavar="DIR", help="write the reports here")
    ap.add_argument("--keep", action="store_true", help="keep the throw-away repository")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="efflab-compare-bench-"))
    try:
        repo = tmp / "proj"
        shas = build(repo, args.slowdown)
        for name, (b, h) in {"unchanged": shas[:2], "injected": shas[1:]}.items():
            load = Path("/proc/loadavg").read_text().split()[:3]
            rc, md, wall = compare(repo, b, h, args.cores)
            print(f"== {name} pair: exit {rc}, {wall:.0f} s, load at start {' '.join(load)}")
            print(md)
            if args.out:
                Path(args.out).mkdir(parents=True, exist_ok=True)
                (Path(args.out) / f"compare-{name}.md").write_text(md)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
