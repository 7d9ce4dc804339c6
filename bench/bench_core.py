"""Core pipeline benchmarks (printed figures, not tests). Run: .venv/bin/python bench/bench_core.py

1. planning a 10,000-point grid                         goal <= 2 s
2. no-op rerun of edge-digits (after one full run)      goal <= 3 s
3. per-job orchestration overhead, efflab run vs plain Snakemake on the same DAG of
   equivalent shell commands, as a ratio               goal <= 1.2x
4. aggregating 100,000 synthetic run records            goal <= 15 s
Each figure is the median of >= 3 repetitions with min-max spread.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import make_tiny_repo, write  # noqa: E402

from efflab.plan.planner import Planner, load_experiment  # noqa: E402
from efflab.results import records, tables  # noqa: E402,F401

REPS = 3


def timed(fn, reps: int = REPS) -> tuple[float, float, float]:
    xs = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        xs.append(time.perf_counter() - t0)
    return statistics.median(xs), min(xs), max(xs)


def show(name: str, stats: tuple[float, float, float], goal: str) -> None:
    med, lo, hi = stats
    print(f"{name:<58} median {med:8.3f} s  (min {lo:.3f}, max {hi:.3f})  goal {goal}")


def bench_plan(tmp: Path) -> None:
    repo = make_tiny_repo(tmp / "plan")
    write(
        repo / "workflows/experiments/big.yaml",
        "name: big\nscript: demo,square\ngrid:\n  n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
        "  scale: [" + ", ".join(f"{i}.5" for i in range(100)) + "]\nrepetitions: 10\n",
    )
    show(
        "plan 10,000 points (registry + planner, in-process)",
        timed(lambda: Planner(repo).plan(load_experiment(repo, "big"))),
        "<= 2 s",
    )


def efflab(repo: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "efflab", "--repo", str(repo), *args],
        check=True,
        capture_output=True,
    )


def bench_noop(tmp: Path) -> None:
    if not (ROOT / "workflows/experiments/edge-digits.yaml").exists():
        print("no-op rerun of edge-digits: skipped (experiment missing)")
        return
    t0 = time.perf_counter()
    efflab(ROOT, "run", "edge-digits", "--cores", "2", "-q")
    print(
        f"{'edge-digits full run (first call; cached afterwards)':<58} {time.perf_counter() - t0:8.1f} s"
    )
    show(
        "no-op rerun of edge-digits (efflab run, CLI start to exit)",
        timed(lambda: efflab(ROOT, "run", "edge-digits", "-q")),
        "<= 3 s",
    )


JOB_COUNTS = (10, 40)


def bench_overhead(tmp: Path) -> None:
    """Trivial jobs: efflab's runner vs a plain shell rule writing the same JSON.

    The per-job figure is the slope between two DAG sizes, so fixed start-up costs
    (efflab's CLI, planning, records and table; Snakemake's own start) cancel out.
    """
    results: dict[str, dict[int, float]] = {"plain": {}, "efflab": {}}
    for n_jobs in JOB_COUNTS:
        plain = tmp / f"plain{n_jobs}"
        plain.mkdir()
        (plain / "Snakefile").write_text(
            f"rule all:\n    input: expand('out/{{i}}.json', i=range({n_jobs}))\n\n"
            "rule job:\n    output: 'out/{i}.json'\n"
            '    shell: "seq 1 3 > out/{wildcards.i}.txt; '
            'echo \'{{\\"metrics\\": {{\\"count\\": 3}}}}\' > {output}"\n'
        )

        def run_plain(plain: Path = plain) -> None:
            subprocess.run(["rm", "-rf", str(plain / "out"), str(plain / ".snakemake")], check=True)
            subprocess.run(
                [sys.executable, "-m", "snakemake", "--cores", "1", "-q", "all"],
                cwd=plain,
                check=True,
                capture_output=True,
            )

        repo = make_tiny_repo(tmp / f"eff{n_jobs}")
        write(
            repo / "workflows/experiments/many.yaml",
            f"name: many\nscript: demo,gen\ngrid:\n  n: [{', '.join(str(i + 1) for i in range(n_jobs))}]\n",
        )

        def run_efflab(repo: Path = repo) -> None:
            subprocess.run(
                [
                    "rm",
                    "-rf",
                    str(repo / "artifacts"),
                    str(repo / "results"),
                    str(repo / ".snakemake"),
                ],
                check=True,
            )
            efflab(repo, "run", "many", "--cores", "1", "-q", "--runtime", "host")

        a, b = timed(run_plain), timed(run_efflab)
        show(f"plain Snakemake, {n_jobs} shell jobs", a, "-")
        show(f"efflab run, {n_jobs} run.sh invocations (+records, table)", b, "-")
        results["plain"][n_jobs], results["efflab"][n_jobs] = a[0], b[0]
    lo, hi = JOB_COUNTS
    slope = {k: (v[hi] - v[lo]) / (hi - lo) for k, v in results.items()}
    print(
        f"{'per-job marginal cost: plain vs efflab':<58} {slope['plain'] * 1e3:8.1f} ms vs "
        f"{slope['efflab'] * 1e3:.1f} ms  ratio {slope['efflab'] / slope['plain']:.2f}x  goal <= 1.2x"
    )
    print(
        f"{'fixed cost of efflab run (intercept) vs plain':<58} "
        f"{results['efflab'][lo] - slope['efflab'] * lo:8.2f} s vs "
        f"{results['plain'][lo] - slope['plain'] * lo:.2f} s"
    )


def bench_aggregate(tmp: Path, n: int = 100_000) -> None:
    d = tmp / "agg" / "results" / "synth" / "runs"
    d.mkdir(parents=True)
    base = {
        "schema_version": 1,
        "run_id": "r",
        "experiment": "synth",
        "alias": "x",
        "status": "ok",
        "started": None,
        "ended": None,
        "duration_s": 1.0,
        "provenance": {},
    }
    import random

    rnd = random.Random(0)
    for i in range(n):
        rec = dict(
            base,
            key=f"{i:020x}",
            point={"model": f"m{i % 10}", "size": (i // 10) % 100},
            repetition=i // 1000,
            metrics={
                "latency_us": {"value": rnd.gauss(100, 5), "unit": "us", "better": "lower"},
                "acc": {"value": rnd.random(), "unit": "ratio", "better": "higher"},
            },
        )
        (d / f"{i:020x}.json").write_text(json.dumps(rec))

    def agg() -> None:
        recs = records.load(tmp / "agg", "synth")
        df = tables.aggregate(recs, ["model", "size"])
        assert len(df) == 2000

    show(f"aggregate {n:,} run records (load JSON + pandas)", timed(agg), "<= 15 s")


def main() -> None:
    which = set(sys.argv[1:]) or {"plan", "noop", "overhead", "aggregate"}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        if "plan" in which:
            bench_plan(tmp)
        if "overhead" in which:
            bench_overhead(tmp)
        if "aggregate" in which:
            bench_aggregate(tmp)
        if "noop" in which:
            bench_noop(tmp)


if __name__ == "__main__":
    main()
