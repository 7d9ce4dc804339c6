"""serve-sim-capacity: the arrival rate at which a simulated cluster's SLO attainment
falls below the target, found by bracketing and geometric bisection over rates, each
rate judged over several workload seeds (llmserve.simrun.capacity_search)."""

from __future__ import annotations

from typing import Any

import numpy as np
from llmserve.simrun import Probe, capacity_search, setup_for, simulate_point


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    s = setup_for(ctx)
    k = int(inp["seeds_per_rate"])
    first = int(inp["seed"]) + int(getattr(ctx, "repetition", 0)) * k
    seeds = list(range(first, first + k))
    wall = 0.0
    gpus = 0.0

    def judge(rate: float) -> Probe:
        nonlocal wall, gpus
        att, good = [], []
        for sd in seeds:
            m, _ = simulate_point(inp, s, rate, sd)
            att.append(m["slo_attainment"])
            good.append(m["goodput_rps"])
            wall += m["sim_wall_s"]
            gpus = m["gpus"]
        ctx.log.info("rate %.2f req/s: SLO attainment %s", rate, [round(a, 3) for a in att])
        return Probe(rate, att, good)

    with ctx.timer("search"):
        cap = capacity_search(judge, inp["rate_start"], inp["target"], inp["rel_tol"])
    at = cap.probe_at(cap.rate_ok)
    return {
        "metrics": {
            "capacity_rps": cap.rate_ok,
            "rate_fail_rps": cap.rate_fail,
            "attainment_at_capacity": at.mean_attainment,
            "goodput_at_capacity_rps": float(np.mean(at.goodput_rps)),
            "capacity_per_gpu_rps": cap.rate_ok / gpus if gpus else 0.0,
            "probes": float(len(cap.probes)),
            "sim_wall_s": wall,
        },
        "values": {
            "seeds": seeds,
            "tp": s.tp,
            "probes": [
                {"rate_rps": p.rate_rps, "attainment": p.attainment, "goodput_rps": p.goodput_rps}
                for p in cap.probes
            ],
        },
    }
