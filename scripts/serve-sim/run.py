"""serve-sim: simpy cluster simulation with a roofline or fitted iteration cost."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from llmserve.costmodel import FittedCost, Roofline, auto_tp, load_data
from llmserve.metrics import REQUEST_METRICS, summarize
from llmserve.scheduler import Limits
from llmserve.sim import SimConfig, simulate
from llmserve.workload import WorkloadSpec, generate

try:
    from efflab.runtime.ctx import BadInput
except ImportError:  # direct use outside the framework
    BadInput = ValueError  # type: ignore[misc,assignment]


def _cost(ctx: Any) -> tuple[Any, Limits, int, float, float]:
    """Cost model, admission limits, devices per instance, idle W, KV bytes/token."""
    inp = ctx.inputs
    if inp["cost_model"] == "fitted":
        coef = json.loads(ctx.deps["fit"].files["coef"].read_text())["coef"]
        cost = FittedCost(np.array(coef), cap=inp["power_cap"])
        lim = Limits(max_batch=inp["max_batch"], max_prefill_tokens=inp["max_prefill_tokens"])
        return cost, lim, 1, cost.idle_w, 0.0
    data = load_data()
    tp = inp["tp"] or auto_tp(inp["gpu"], inp["model"], data)
    cost = Roofline(inp["gpu"], inp["model"], tp, inp["power_cap"], data)
    cap = cost.kv_capacity_tokens()
    need = inp["prompt_len_max"] + inp["output_len_max"]
    if cap < need:
        raise BadInput(
            "tp",
            f"enough GPUs for the {inp['model']} weights plus one request's "
            f"KV cache ({need} tokens)",
            tp,
        )
    lim = Limits(
        max_batch=inp["max_batch"], kv_capacity=cap, max_prefill_tokens=inp["max_prefill_tokens"]
    )
    return cost, lim, tp, cost.idle_w, cost.kv_bytes_per_token


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    cost, lim, tp, idle_w, kvb = _cost(ctx)
    reqs = generate(
        WorkloadSpec(
            n_requests=inp["n_requests"],
            rate_rps=inp["rate_rps"],
            prompt_len=(inp["prompt_len_min"], inp["prompt_len_max"]),
            output_len=(inp["output_len_min"], inp["output_len_max"]),
            length_dist=inp["length_dist"],
            seed=inp["seed"],
        )
    )
    cfg = SimConfig(
        policy=inp["policy"],
        token_budget=inp["token_budget"],
        instances=inp["instances"],
        limits=lim,
        kv_bytes_per_token=kvb,
        link_bw=inp["link_gb_s"] * 1e9,
        devices_per_instance=tp,
        idle_w=idle_w,
    )
    t0 = time.perf_counter()
    with ctx.timer("simulate"):
        res = simulate(reqs, cfg, cost)
    wall = time.perf_counter() - t0
    m = summarize(res.requests, inp["slo_ttft_ms"], inp["slo_tbt_ms"])
    metrics = {k: m[k] for k in REQUEST_METRICS}
    metrics.update(
        throughput_per_gpu_tok_s=m["throughput_tok_s"] / res.devices,
        goodput_rps=m["slo_attainment"] * m["requests_completed"] / res.span_s,
        avg_power_w=res.energy_j / res.span_s / res.devices,
        energy_per_token_j=res.energy_j / max(m["output_tokens"], 1.0),
        gpus=float(res.devices),
        sim_wall_s=wall,
        # saturation evidence: the busiest instance's share of the span, and how much
        # longer than the arrival window the cluster needed (>> 1: a queue built up)
        busy_frac_max=max(i.busy_s for i in res.instances) / res.span_s,
        drain_ratio=res.span_s / max(r.arrival for r in res.requests)
        if len(res.requests) > 1
        else 1.0,
    )
    return {
        "metrics": metrics,
        "values": {
            "tp": tp,
            "kv_capacity_tokens_per_instance": lim.kv_capacity,
            "kv_transfer_s_total": res.kv_transfers_s,
            "span_s": res.span_s,
            "iterations": [i.iterations for i in res.instances],
            "busy_frac": [i.busy_s / res.span_s for i in res.instances],
            "cost_model": inp["cost_model"],
        },
    }
