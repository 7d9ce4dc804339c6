"""`efflab nightly bisect` on a real repository case (printed figures, not a test).

Run: PYTHONPATH=src .venv/bin/python bench/bench_nightly_bisect.py [--culprit 11] [--slowdown 0.2]
     [--repetitions N] [--count]

Builds a throw-away git repository from this project's committed tree (`git archive
HEAD`) with 16 commits: the base, then 15 more — documentation edits, an unrelated
script (fpga-gen) touched, a comment added to the edge-bench script (new content keys,
same speed) and, at `--culprit`, extra work in the measured loop of edge-digits'
benchmark (`edgelib.ort.timed_runs` spins for `--slowdown` of each call's time: by
default every timed call 20 % slower). Then runs the real CLI,

    efflab nightly bisect edge-digits --metric latency_p50_us \\
        --point model=mlp-1024 precision=fp32 --good <base> --bad <last> --runtime host

with the repository's own nightly suite (quick, 5 repetitions, runs 300), and prints
whether it named the culprit, the commits measured (and how many reused the cache)
and the wall time. Host runtime: no Docker image build in the figure.

With --count the measured metric is a work count instead of wall time: the culprit
makes the serving simulator re-simulate `--slowdown` of its requests (deterministic
extra work, no spin on a clock), and the bisect reads `instructions` of the nightly
suite's `serving-sim-count` (Valgrind's cachegrind, one repetition per commit). The
instruction change the culprit really caused is printed beside the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SLOW = """    for i in range(runs):
        t0 = clock()
        sess.run(None, feeds[i % len(feeds)])
        spent = clock() - t0
        while clock() - t0 < spent * FACTOR:  # extra work in the measured loop
            pass
        out[i] = clock() - t0
"""
FAST = """    for i in range(runs):
        t0 = clock()
        sess.run(None, feeds[i % len(feeds)])
        out[i] = clock() - t0
"""


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@b"}
    env |= {"GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "b@b"}
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def commit(repo: Path, msg: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", msg)
    return git(repo, "rev-parse", "HEAD")


SIM = "    res = simulate(reqs, cfg, s.cost)\n"
SIM_SLOW = """    res = simulate(reqs, cfg, s.cost)
    # extra work: the first FRACTION of the requests simulated a second time
    n = max(1, round(inp["n_requests"] * FRACTION))
    simulate(generate(spec_from_inputs(inp, rate_rps, seed, n)), cfg, s.cost)
"""


def build(repo: Path, culprit: int, slowdown: float, count: bool = False) -> tuple[list[str], str]:
    repo.mkdir(parents=True)
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "HEAD"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(repo)], input=tar, check=True)
    git(repo, "init", "-q")
    shas = [commit(repo, "base: the project as committed")]
    ort_py = repo / "scripts/_lib/edge/edgelib/ort.py"
    sim_py = repo / "scripts/_lib/serving/llmserve/simrun.py"
    assert FAST in ort_py.read_text(), "timed_runs changed; update the bench"
    assert SIM in sim_py.read_text(), "serve-sim's simulate call changed; update the bench"
    bad = ""
    for i in range(2, 17):
        if i == culprit and count:
            sim_py.write_text(sim_py.read_text().replace(SIM, SIM_SLOW.replace("FRACTION", repr(slowdown))))  # fmt: skip
            shas.append(commit(repo, "serve-sim: simulate part of the workload twice (more work)"))
            bad = shas[-1]
        elif i == culprit:
            slow = SLOW.replace("FACTOR", repr(1 + slowdown))
            ort_py.write_text(ort_py.read_text().replace(FAST, slow))
            shas.append(commit(repo, "edgelib: check each call's output (slower timed loop)"))
            bad = shas[-1]
        elif i % 5 == 0:
            f = repo / "scripts/edge-bench/run.py"
            f.write_text(f.read_text() + f"\n# note {i}\n")
            shas.append(commit(repo, f"edge-bench: comment {i} (new keys, same speed)"))
        elif i % 4 == 0:
            f = repo / "scripts/fpga-gen/run.py"
            f.write_text(f.read_text() + f"\n# note {i}\n")
            shas.append(commit(repo, f"fpga-gen: comment {i} (unrelated script)"))
        else:
            f = repo / "docs/bench-notes.md"
            f.parent.mkdir(exist_ok=True)
            f.write_text((f.read_text() if f.exists() else "") + f"note {i}\n")
            shas.append(commit(repo, f"docs: note {i}"))
    return shas, bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--culprit", type=int, default=11, help="which commit (2..16) is slow")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument(
        "--slowdown", type=float, default=0.2, help="how much slower the culprit is (0.2 = 20 %%)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the throw-away repository")
    ap.add_argument(
        "--count", action="store_true", help="bisect serving-sim-count's instructions (cachegrind)"
    )
    ap.add_argument(
        "--repetitions", type=int, help="repetitions per tested commit (default: the suite's)"
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="efflab-bisect-bench-"))
    try:
        repo = tmp / "proj"
        shas, bad = build(repo, args.culprit, args.slowdown, args.count)
        print(
            f"repository: {repo}, {len(shas)} commits, culprit #{args.culprit} {bad[:10]} "
            f"({args.slowdown:.0%} slower timed calls)"
        )
        t0 = time.perf_counter()
        cmd = [sys.executable, "-m", "efflab", "--repo", str(repo), "nightly", "bisect"]
        if args.count:
            cmd += ["serving-sim-count", "--metric", "instructions"]
        else:
            cmd += ["edge-digits", "--metric", "latency_p50_us", "--point", "model=mlp-1024"]
            cmd += ["precision=fp32"]
        cmd += ["--good", shas[0], "--bad", shas[-1], "--runtime", "host"]
        cmd += ["--cores", str(args.cores), "--json"]
        if args.repetitions:
            cmd += ["--repetitions", str(args.repetitions)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        sys.stderr.write(proc.stderr)
        res = json.loads(proc.stdout)
        found = (res.get("first_bad") or {}).get("commit")
        for t in res["tested"]:
            print(f"  tested {t.get('commit', '?')[:10]}: {json.dumps({k: v for k, v in t.items() if k != 'commit'})[:300]}")  # fmt: skip
        print(f"exit {proc.returncode}: {res['message']}")
        print(f"named the culprit: {found == bad}")
        reused = sum(1 for t in res["tested"] if t["reused"])
        print(
            f"commits measured: {len(res['tested'])} of {len(shas)} ({reused} from the cache), "
            f"alpha per test {res['alpha_per_test']:.3g}, wall {wall:.0f} s "
            f"(bisect's own clock {res['wall_s']:.0f} s)"
        )
        load = Path("/proc/loadavg").read_text().split()[:3]
        print(f"load average after: {' '.join(load)}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
