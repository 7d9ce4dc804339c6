"""Per-invocation overhead of the Docker runtime versus the host runtime.

    .venv/bin/python bench/bench_docker.py [--reps 5] [--points 5] [--json]

A throwaway project holds one trivial script (env: base) that returns a constant, so
what is timed is efflab's own cost per invocation:
- runner: `python -m efflab.runtime.runner FOLDER` alone (what Snakemake runs per job), host
  (fork) versus docker (create + start a sealed container, run, inspect, remove);
- end to end: `efflab run` of an experiment with --points invocations (Snakemake,
  runner, records, table), divided by the number of invocations.
Runtimes alternate within each repetition so drift on a shared machine hits both.
Reported: median, min-max spread, docker/host ratio and docker-host difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
META = """\
alias: noop
uid: 00000000000000f1
tags: [bench, noop]
description: Does nothing; the benchmark times the runtime around it.
version: "1"
env: base
run: run.py
inputs:
  i: {type: integer, default: 0}
outputs:
  metrics:
    one: {unit: "1", better: higher}
"""
RUN = 'def run(ctx):\n    return {"metrics": {"one": 1.0}}\n'


def make_project(root: Path, points: int) -> Path:
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflows/rules", root / "workflows/rules")
    shutil.copytree(REPO / "envs/base", root / "envs/base", ignore=shutil.ignore_patterns("wheels"))
    (root / "scripts/noop").mkdir(parents=True)
    (root / "scripts/noop/meta.yaml").write_text(META)
    (root / "scripts/noop/run.py").write_text(RUN)
    (root / "workflows/experiments").mkdir(parents=True)
    spec = {"name": "noop", "script": "bench,noop", "grid": {"i": list(range(points))}}
    (root / "workflows/experiments/noop.yaml").write_text(json.dumps(spec))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def efflab(repo: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([PY, "-m", "efflab", "--repo", str(repo), *args], capture_output=True,
                          text=True)  # fmt: skip
    if proc.returncode != 0:
        sys.exit(f"efflab {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return proc


def time_runner(folder: Path, runtime: str) -> float:
    (folder / "outputs.json").unlink(missing_ok=True)
    env = dict(os.environ, EFFLAB_RUN_ID="bench-docker")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PY, "-m", "efflab.runtime.runner", "--runtime", runtime, str(folder)],
        env=env,
        capture_output=True,
    )
    wall = time.perf_counter() - t0
    out = json.loads((folder / "outputs.json").read_text()) if proc.returncode == 0 else None
    if out is None or out["runtime"] != runtime:
        sys.exit(f"runner failed on {runtime}: {proc.stderr.decode()[-2000:]}")
    return wall


def time_end_to_end(repo: Path, runtime: str, points: int) -> float:
    shutil.rmtree(repo / "artifacts", ignore_errors=True)
    shutil.rmtree(repo / "results", ignore_errors=True)
    t0 = time.perf_counter()
    efflab(repo, "run", "noop", "--runtime", runtime, "-q", "--json")
    return (time.perf_counter() - t0) / points


def summary(xs: list[float]) -> dict[str, float]:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per runtime (>= 3)")
    ap.add_argument("--points", type=int, default=5, help="invocations per end-to-end run")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args()
    if args.reps < 3:
        ap.error("--reps must be at least 3")
    with tempfile.TemporaryDirectory(prefix="efflab-bench-docker-") as tmp:
        repo = make_project(Path(tmp), args.points)
        t0 = time.perf_counter()
        built = json.loads(efflab(repo, "env", "build", "base", "--json", "-q").stdout)[0]
        build_s = time.perf_counter() - t0
        plan = json.loads(efflab(repo, "plan", "noop", "--json").stdout)
        sys.path.insert(0, str(REPO / "src"))
        from efflab.plan.planner import plan_experiment
        from efflab.workflow import snakemake_adapter as engine

        engine.write_invocations(repo, plan_experiment(repo, "noop").invocations.values())
        folder = repo / "artifacts/noop" / plan["points"][0]["key"]
        res: dict[str, dict[str, list[float]]] = {"runner": {}, "end_to_end": {}}
        for rt in ("host", "docker"):  # warm-up: page cache, image layers, Python bytecode
            time_runner(folder, rt)
        for _ in range(args.reps):
            for rt in ("host", "docker"):
                res["runner"].setdefault(rt, []).append(time_runner(folder, rt))
                res["end_to_end"].setdefault(rt, []).append(time_end_to_end(repo, rt, args.points))
    figures = {"env_build": {"cached": built["cached"], "seconds": round(build_s, 2)}}
    for kind, by_rt in res.items():
        host, dock = summary(by_rt["host"]), summary(by_rt["docker"])
        figures[kind] = {
            "host": host,
            "docker": dock,
            "ratio": dock["median"] / host["median"],
            "overhead_s": dock["median"] - host["median"],
        }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"env base: {'cached' if built['cached'] else 'built'} in {build_s:.2f} s")
    print(f"{'per invocation':<16} {'runtime':<8} {'median s':>9} {'min s':>8} {'max s':>8}")
    for kind in ("runner", "end_to_end"):
        for rt in ("host", "docker"):
            s = figures[kind][rt]
            print(f"{kind:<16} {rt:<8} {s['median']:9.3f} {s['min']:8.3f} {s['max']:8.3f}")
        f = figures[kind]
        print(f"{'':<16} docker/host = {f['ratio']:.2f}x, +{f['overhead_s']:.3f} s per invocation")
    print(f"(n = {args.reps} repetitions each, {args.points} invocations per end-to-end run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
