"""Evidence for `efflab optimize` (issue #18); prints figures, asserts nothing.

edge-digits: a space larger than the experiment's grid (model x precision; the grid
has 2 models, this space --models of them). Every configuration is measured once
through the pipeline (the exhaustive "grid"), giving the true Pareto front of
(latency_p50_us min, accuracy max) under accuracy >= --min-acc; then studies of N
trials (several seeds, each sampler) run over the same space. Their trials are cache
hits of the exhaustive measurements, so the comparison is of the search alone (no new
noise; the exhaustive pass re-measures contended timings, the studies take its records
as they are): the fraction of the true front each study's front recovers, per N.

serving-schedulers: the best (policy, token budget) for throughput_tok_s under a
tbt_p99_ms SLO at the high arrival rate, at quick size (n_requests 16, 1 repetition),
found by a study of --serving-trials trials; every measured trial is printed.

    PYTHONPATH=src python bench/bench_optimize.py --runtime host [--part edge|serving|both]

Timings on a shared machine move with its load: the script prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from efflab.optimize.report import pareto, rows_of
from efflab.optimize.request import Options, build_request
from efflab.optimize.search import optimize
from efflab.optimize.trials import evaluate
from efflab.runtime import base
from efflab.workflow.options import RunOptions

REPO = Path(__file__).resolve().parents[1]


def _front_of(req, outcomes) -> set[tuple]:
    """True front from measured outcomes (same rule as report.pareto)."""
    signs = [1 if o.direction == "maximize" else -1 for o in req.objectives]
    pts = []
    for o in outcomes:
        if o.ok and all(c.holds(o.metrics[c.metric].median) for c in req.constraints):
            v = [s * o.metrics[x.metric].median for s, x in zip(signs, req.objectives, strict=True)]
            pts.append((tuple(sorted(o.params.items())), v))
    front = set()
    for p, v in pts:
        dominated = any(
            all(a >= b for a, b in zip(w, v, strict=True))
            and any(a > b for a, b in zip(w, v, strict=True))
            for _, w in pts
        )
        if not dominated:
            front.add(p)
    return front


def edge(args, opts: RunOptions) -> None:
    models = args.models.split(",")
    cli = Options(
        objectives=["latency_p50_us:min", "accuracy:max"],
        constraints=[f"accuracy>={args.min_acc}"],
        search={"model": models, "precision": ["fp32", "int8-dynamic", "int8-static"]},
        quick=True,
        trials=1,
    )
    req, exp, _ = build_request(REPO, "edge-digits", cli)
    configs = [
        {"model": m, "precision": p}
        for m in models
        for p in ["fp32", "int8-dynamic", "int8-static"]
    ]
    t0 = time.monotonic()
    b = evaluate(REPO, req, exp, configs, opts, "bench-optimize-exhaustive")
    print(f"edge-digits exhaustive: {len(configs)} configs (grid has 6), {b.jobs_run} jobs, "
          f"{time.monotonic() - t0:.0f} s, load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for o in b.outcomes:
        lat, acc = o.metrics["latency_p50_us"].median, o.metrics["accuracy"].median
        print(
            f"  {o.params['model']:<9} {o.params['precision']:<13} p50 {lat:8.1f} us  acc {acc:.4f}"
        )
    true = _front_of(req, b.outcomes)
    print(
        f"true front ({len(true)}): {sorted(dict(p)['model'] + '/' + dict(p)['precision'] for p in true)}"
    )
    print("\nfraction of the true front recovered (median [min, max] over seeds):")
    for sampler in args.samplers.split(","):
        for n in [int(x) for x in args.trials.split(",")]:
            fracs = []
            for seed in range(args.seeds):
                c = Options(**{**cli.__dict__, "trials": n, "sampler": sampler, "seed": seed})
                r, e, _ = build_request(REPO, "edge-digits", c)
                # the studies read the exhaustive measurements as they are (rounds 0):
                # re-measuring contended ones here would add noise the grid did not see
                res = optimize(REPO, r, e, opts, batch=4, remeasure_rounds=0)
                found = {
                    tuple(sorted(row.params.items())) for row in pareto(r, rows_of(r, res.opened))
                }
                fracs.append(len(found & true) / len(true))
            print(f"  {sampler:<6} N={n:<3} {statistics.median(fracs):.2f} [{min(fracs):.2f}, {max(fracs):.2f}]"
                  f"  ({args.seeds} seeds)")  # fmt: skip


def serving(args, opts: RunOptions) -> None:
    cli = Options(
        objectives=["throughput_tok_s:max"],
        constraints=[f"tbt_p99_ms<={args.slo_ms}"],
        search={
            "policy": ["prefill-first", "decode-first", "chunked"],
            "token_budget": [32, 64, 128, 256, 512],
        },  # fmt: skip
        trials=args.serving_trials,
        quick=True,
        seed=0,
        fixed={"rate": "high"},
    )
    req, exp, _ = build_request(REPO, "serving-schedulers", cli)
    t0 = time.monotonic()
    res = optimize(REPO, req, exp, opts, batch=opts.cores)
    print(f"\nserving-schedulers: {len(res.rows)} trials of 15 configs, {res.jobs_run} jobs, "
          f"{time.monotonic() - t0:.0f} s, load {os.getloadavg()[0]:.1f} (quick: 16 requests, 1 rep)")  # fmt: skip
    for r in res.rows:
        tp = r.objectives.get("throughput_tok_s", {}).get("median")
        tbt = (r.constraints.get(req.constraints[0].text()) or {}).get("median")
        print(f"  trial {r.number:>2} {r.params['policy']:<13} budget {r.params['token_budget']:<4} "
              f"tok/s {tp if tp is None else round(tp, 1)}  tbt_p99 {tbt if tbt is None else round(tbt, 1)} ms"
              f"  {'feasible' if r.feasible else 'INFEASIBLE' if r.ok else 'failed'}")  # fmt: skip
    for line in res.set_lines:
        print(f"best under tbt_p99_ms<={args.slo_ms}: {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["edge", "serving", "both"], default="both")
    ap.add_argument("--runtime", default="host", choices=sorted(base.RUNTIMES))
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--models", default="mlp-64,mlp-256,mlp-1024,cnn-16,cnn-64")
    ap.add_argument("--min-acc", type=float, default=0.95)
    ap.add_argument("--trials", default="3,6,9")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--samplers", default="tpe,nsga2,random")
    ap.add_argument("--slo-ms", type=float, default=40.0)
    ap.add_argument("--serving-trials", type=int, default=8)
    args = ap.parse_args()
    opts = RunOptions(cores=args.cores, runtime=base.get(args.runtime), quick=True, quiet=True)
    if args.part in ("edge", "both"):
        edge(args, opts)
    if args.part in ("serving", "both"):
        serving(args, opts)


if __name__ == "__main__":
    main()
