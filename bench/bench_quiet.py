"""Timing spread with and without pinned cores, idle and beside a busy loop (printed
figures, not a test).

Run: PYTHONPATH=src .venv/bin/python bench/bench_quiet.py [--reps 10] [--rounds 1]

Two timing experiments of this repository (exclusive scripts), one point each:
edge-digits (ONNX Runtime MLP, fp32, 300 timed runs: latency_p50_us) and edge-macs
(PyTorch MobileNetV2-style net, 20 timed runs: latency_p50_ms). Each is run under four
conditions, `--reps` repetitions per run, every run measured anew (its own salt):
idle or beside a one-core busy loop (`python -c "while True: pass"`, placed by the
kernel), each unpinned ($EFFLAB_NO_PIN=1: the exclusive job asks for every core) and
pinned (the measured core for the job, the rest for everything else). Conditions are
interleaved round by round (the order rotates). Prints, per experiment and condition,
the coefficient of variation (sample std / mean) of the metric over the repetitions,
its median [min-max], how many repetitions the job side judged contended, and the load
average when the run started. On a shared machine "idle" means: no busy loop of ours.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from efflab.plan.planner import Planner, load_experiment  # noqa: E402
from efflab.runtime import base  # noqa: E402
from efflab.runtime.pinning import OFF_ENV  # noqa: E402
from efflab.workflow.options import RunOptions  # noqa: E402
from efflab.workflow.pipeline import run_experiment  # noqa: E402

EXPERIMENTS = [
    (
        "edge-digits",
        {"model": "mlp-1024", "precision": "fp32", "runs": 300, "warmup": 30},
        "latency_p50_us",
    ),  # fmt: skip
    ("edge-macs", {"model": "mobilenetv2", "runs": 20, "warmup": 3}, "latency_p50_ms"),
]
CONDITIONS = ["idle unpinned", "idle pinned", "busy unpinned", "busy pinned"]


def measure(name: str, overrides: dict, metric: str, reps: int, cond: str, tag: str) -> dict:
    busy = None
    if cond.startswith("busy"):
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(1.0)  # let the scheduler place it
    if cond.endswith("unpinned"):
        os.environ[OFF_ENV] = "1"
    else:
        os.environ.pop(OFF_ENV, None)
    load = float(Path("/proc/loadavg").read_text().split()[0])
    try:
        host = base.get("host")
        exp = load_experiment(ROOT, name, True, overrides)
        exp.repetitions = reps
        plan = Planner(ROOT, salt=tag, runtime=host.identity()).plan(exp)
        opts = RunOptions(cores=2, runtime=host, quick=True, quiet=True)
        res = run_experiment(ROOT, name, opts, overrides=overrides, run_id=tag, salt=tag,
                             prepared=plan, save_table=False)  # fmt: skip
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        os.environ.pop(OFF_ENV, None)
    recs = [r for r in res.collected.ok if r["key"] in {p.key for p in plan.points}]
    vals = [r["metrics"][metric]["value"] for r in recs]
    held = [bool((r.get("pinning") or {}).get("held")) for r in recs]
    return {
        "n": len(vals),
        "cv": statistics.stdev(vals) / statistics.mean(vals) if len(vals) > 1 else None,
        "median": statistics.median(vals),
        "min": min(vals),
        "max": max(vals),
        "contended": sum(bool(r.get("contended")) for r in recs),
        "pinned_held": sum(held),
        "load_at_start": load,
        "values": vals,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the figures here")
    args = ap.parse_args()
    out: dict[str, dict[str, list[dict]]] = {}
    t0 = time.perf_counter()
    for rnd in range(args.rounds):
        order = CONDITIONS[rnd % 4 :] + CONDITIONS[: rnd % 4]
        for name, overrides, metric in EXPERIMENTS:
            for cond in order:
                tag = f"quiet-{int(time.time())}-{rnd}-{cond.replace(' ', '-')}"
                got = measure(name, overrides, metric, args.reps, cond, tag)
                out.setdefault(name, {}).setdefault(cond, []).append(got)
                print(
                    f"{name:12} {cond:14} CV {got['cv']:.3f}  median {got['median']:.4g} "
                    f"[{got['min']:.4g}-{got['max']:.4g}]  contended {got['contended']}/{got['n']}"
                    f"  pinned {got['pinned_held']}/{got['n']}  load {got['load_at_start']:.2f}",
                    flush=True,
                )
    print(f"wall {time.perf_counter() - t0:.0f} s; load now {Path('/proc/loadavg').read_text().split()[:3]}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
