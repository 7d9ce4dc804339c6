"""serve-sim: simpy cluster simulation with a roofline or fitted iteration cost.

The arrival rate is `rate_rps`, or with `load` > 0 that multiple of the capacity
serve-sim-capacity found for the reference arm (`capacity_policy`, uncapped, same
cluster and workload). Repetition r serves workload seed `seed + r`: the simulator is
deterministic, so repetitions are workload seeds, not timing noise.
"""

from __future__ import annotations

from typing import Any

from llmserve.simrun import setup_for, simulate_point


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    s = setup_for(ctx)
    capacity = float(ctx.deps["capacity"].metrics["capacity_rps"])
    rate = inp["load"] * capacity if inp["load"] > 0 else float(inp["rate_rps"])
    seed = int(inp["seed"]) + int(getattr(ctx, "repetition", 0))
    ctx.log.info(
        "simulating %d requests at %.2f req/s (load %.2f of %.2f req/s), %s, cap %.2f, seed %d",
        inp["n_requests"], rate, rate / capacity, capacity, inp["policy"], inp["power_cap"], seed,
    )  # fmt: skip
    with ctx.timer("simulate"):
        metrics, res = simulate_point(inp, s, rate, seed)
    metrics.update(arrival_rate_rps=rate, reference_capacity_rps=capacity)
    return {
        "metrics": metrics,
        "values": {
            "tp": s.tp,
            "workload_seed": seed,
            "utilisation": rate / capacity,
            "kv_capacity_tokens_per_instance": s.limits.kv_capacity,
            "kv_transfer_s_total": res.kv_transfers_s,
            "span_s": res.span_s,
            "iterations": [i.iterations for i in res.instances],
            "busy_frac": [i.busy_s / res.span_s for i in res.instances],
            "cost_model": inp["cost_model"],
        },
    }
