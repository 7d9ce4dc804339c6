"""Site build at scale (printed figures, not a test).

Run: PYTHONPATH=src .venv/bin/python bench/bench_site.py [--records 100000] [--reps 3]

Writes a synthetic project of N run records (4 experiments × 2 machines: this one's
`runs/` and an imported `hosts/lab-b/`; 250 points × 5 metrics each, realistic record
size with full provenance; 3 table versions per machine made by `tables.aggregate` +
`tables.save`), then times `efflab site build` in a fresh process per repetition.
Goal: ≤ 30 s at 100,000 records on the 2-core box; no page over a few MB.
Prints the median with min–max of the repetitions, the largest pages and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from efflab.core import layout
from efflab.results import tables

ROOT = Path(__file__).resolve().parents[1]
METRICS = {
    "latency_p50_us": ("us", "lower"),
    "latency_p99_us": ("us", "lower"),
    "accuracy": ("ratio", "higher"),
    "model_size_kb": ("KiB", "lower"),
    "energy_per_inference_mj": ("mJ", "lower"),
}
HOSTS = {
    "vm": {"cpu_model": "AMD EPYC", "cores": 2, "memory_gb": 23.5, "os": "Linux-6.1-x86_64"},
    "lab-b": {"cpu_model": "Intel Xeon", "cores": 16, "memory_gb": 128, "os": "Linux-6.8-x86_64"},
}


def record(exp: str, i: int, point: dict, rep: int, host: str, rnd: random.Random) -> dict:
    key = f"{abs(hash((exp, host, i, rep))) % 16**20:020x}"
    return {
        "schema_version": 1,
        "run_id": f"20260101T000000-{rep:06d}",
        "experiment": exp,
        "key": key,
        "alias": "edge-bench",
        "point": point,
        "repetition": rep,
        "status": "ok",
        "metrics": {
            m: {"value": rnd.lognormvariate(3, 0.2), "unit": u, "better": b}
            for m, (u, b) in METRICS.items()
        },
        "inputs": {**point, "runs": 200, "warmup": 20, "seed": 0, "threads": 1},
        "values": {"cpu_count": 2, "energy_method": "estimated:cpu-linear-v1"},
        "started": "2026-01-01T00:00:00+00:00",
        "ended": "2026-01-01T00:00:02+00:00",
        "duration_s": 2.0,
        "provenance": {
            "git": {"commit": "5e8687d2c1d64187e08af07b48b8d365e8ee48e3", "dirty": False},
            "host": {"hostname": host, **HOSTS[host], "machine": "x86_64"},
            "python": "3.11.7",
            "packages": {"efflab": "0.1.0", "onnxruntime": "1.32.0", "torch": "2.13.0+cpu"},
            "runtime": "host",
            "image": None,
            "env": "ml-cpu",
            "env_digest": "0" * 64,
            "energy_method": "estimated:cpu-linear-v1",
            "energy_joules": 1.0,
            "cpu_share": rnd.uniform(0.6, 1.0),
            "seeds": {"seed": 0},
            "script": {"alias": "edge-bench", "dir": "scripts/edge-bench"},
        },
    }


def make(repo: Path, n: int) -> None:
    (repo / "workflows").mkdir(parents=True)
    (repo / "Snakefile").write_text("# bench\n")
    rnd = random.Random(0)
    exps, points, per = 4, 250, n // (4 * 2 * 250)  # repetitions per point per machine
    for e in range(exps):
        exp = f"bench-{e}"
        grid = [{"model": f"m{i % 25}", "precision": f"p{i // 25}"} for i in range(points)]
        for host in HOSTS:
            root = (
                layout.experiment_dir(repo, exp)
                if host == "vm"
                else layout.hosts_dir(repo, exp) / host
            )
            (root / "runs").mkdir(parents=True, exist_ok=True)
            recs = []
            for i, pt in enumerate(grid):
                for rep in range(per):
                    r = record(exp, i, pt, rep, host, rnd)
                    (root / "runs" / f"{r['key']}.json").write_text(json.dumps(r))
                    recs.append(r)
            for v in range(3):  # three versions: each a subset growing to all records
                part = recs[: len(recs) * (v + 1) // 3]
                df = tables.aggregate(part, ["model", "precision"])
                extra = {"keys": sorted(r["key"] for r in part), "records": len(part)}
                if host == "vm":
                    tables.save(repo, exp, df, "5e8687d2c1", extra)
                else:
                    d = root / "tables" / f"v{v + 1}"
                    d.mkdir(parents=True)
                    df.to_parquet(d / "table.parquet", index=False)
                    man = {"version": v + 1, "content_hash": tables.content_hash(df), **extra}
                    (d / "manifest.json").write_text(json.dumps(man))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        repo = Path(tmp) / "proj"
        t0 = time.perf_counter()
        make(repo, a.records)
        n = sum(1 for _ in repo.glob("results/*/runs/*.json")) + sum(
            1 for _ in repo.glob("results/*/hosts/*/runs/*.json")
        )
        print(f"setup: {n} records written in {time.perf_counter() - t0:.0f} s")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        times, last = [], {}
        for _ in range(a.reps):
            load = os.getloadavg()[0]
            t = time.perf_counter()
            p = subprocess.run(
                [sys.executable, "-m", "efflab", "--repo", str(repo), "site", "build", "--json"],
                capture_output=True, text=True, env=env, check=True,
            )  # fmt: skip
            times.append(time.perf_counter() - t)
            last = json.loads(p.stdout)
            print(f"  build {times[-1]:.1f} s (load average before: {load:.2f})")
        print(
            f"site build over {last['counts']['records_read']} records: median "
            f"{statistics.median(times):.1f} s (min {min(times):.1f}, max {max(times):.1f}; "
            f"{a.reps} reps, whole process incl. Python start) — goal <= 30 s"
        )
        site = Path(last["out"])
        sizes = sorted(((f.stat().st_size, f) for f in site.rglob("*.html")), reverse=True)
        print(f"pages: {len(sizes)}, total {sum(s for s, _ in sizes) / 1e6:.1f} MB")
        for s, f in sizes[:3]:
            print(f"  {s / 1e6:.2f} MB  {f.relative_to(site)}")
        print(
            f"  assets/plotly.min.js {last['assets']['assets/plotly.min.js'] / 1e6:.2f} MB (shared)"
        )
        print(f"cores: {os.cpu_count()}, load average now: {os.getloadavg()}")


if __name__ == "__main__":
    main()
