"""One simulator run from a script's inputs, and the capacity search over arrival rates.

Why here: serve-sim (one point) and serve-sim-capacity (many runs of the same cluster at
different rates) must build the cost model, the admission limits, the workload and the
metrics identically, or a point's `load` x capacity would not mean what it says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .costmodel import FittedCost, Roofline, auto_tp, load_data
from .metrics import REQUEST_METRICS, summarize
from .scheduler import Limits
from .sim import SimConfig, SimResult, simulate
from .workload import generate, spec_from_inputs


@dataclass
class Setup:
    """Cost model, admission limits, devices per instance, idle W, KV bytes/token."""

    cost: Any
    limits: Limits
    tp: int
    idle_w: float
    kv_bytes_per_token: float


def setup(
    inp: dict[str, Any], coef: Sequence[float] | None, bad: Callable[..., Exception]
) -> Setup:
    """The cluster's cost model from the inputs; `coef` = the fitted cost's coefficients
    (cost_model fitted), `bad(field, expected, found)` = the exception for bad input."""
    if inp["cost_model"] == "fitted":
        if coef is None:
            raise bad("cost_model", "fitted coefficients from serve-fit", None)
        cost = FittedCost(np.array(coef), cap=inp["power_cap"])
        lim = Limits(max_batch=inp["max_batch"], max_prefill_tokens=inp["max_prefill_tokens"])
        return Setup(cost, lim, 1, cost.idle_w, 0.0)
    data = load_data()
    tp = inp["tp"] or auto_tp(inp["gpu"], inp["model"], data)
    cost = Roofline(inp["gpu"], inp["model"], tp, inp["power_cap"], data)
    cap = cost.kv_capacity_tokens()
    need = inp["prompt_len_max"] + inp["output_len_max"]
    if cap < need:
        raise bad(
            "tp",
            f"enough GPUs for the {inp['model']} weights plus one request's "
            f"KV cache ({need} tokens)",
            tp,
        )
    lim = Limits(
        max_batch=inp["max_batch"], kv_capacity=cap, max_prefill_tokens=inp["max_prefill_tokens"]
    )
    return Setup(cost, lim, tp, cost.idle_w, cost.kv_bytes_per_token)


def setup_for(ctx: Any) -> Setup:
    """`setup` from a script's context: the fit's coefficients from its `fit` dependency
    (planned only for cost_model fitted), efflab's BadInput for bad input."""
    try:
        from efflab.runtime.ctx import BadInput as bad
    except ImportError:  # direct use outside the framework
        bad = ValueError
    inp, coef = ctx.inputs, None
    if inp["cost_model"] == "fitted":
        coef = json.loads(ctx.deps["fit"].files["coef"].read_text())["coef"]
    return setup(inp, coef, bad)


def simulate_point(
    inp: dict[str, Any], s: Setup, rate_rps: float, seed: int
) -> tuple[dict[str, float], SimResult]:
    """Serve one seeded workload at `rate_rps`; the metrics serve-sim reports."""
    reqs = generate(spec_from_inputs(inp, rate_rps, seed))
    cfg = SimConfig(
        policy=inp["policy"],
        token_budget=inp["token_budget"],
        instances=inp["instances"],
        limits=s.limits,
        kv_bytes_per_token=s.kv_bytes_per_token,
        link_bw=inp["link_gb_s"] * 1e9,
        devices_per_instance=s.tp,
        idle_w=s.idle_w,
    )
    t0 = time.perf_counter()
    res = simulate(reqs, cfg, s.cost)
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
    return metrics, res


@dataclass
class Probe:
    rate_rps: float
    attainment: list[float]  # one per workload seed
    goodput_rps: list[float]

    @property
    def mean_attainment(self) -> float:
        return float(np.mean(self.attainment))


@dataclass
class Capacity:
    """Highest probed rate whose mean SLO attainment met the target, and the lowest that
    missed it (the bracket the search narrowed to `rel_tol`)."""

    rate_ok: float
    rate_fail: float
    probes: list[Probe] = field(default_factory=list)

    def probe_at(self, rate: float) -> Probe:
        return next(p for p in self.probes if p.rate_rps == rate)


def capacity_search(
    judge: Callable[[float], Probe],
    rate_start: float,
    target: float = 0.9,
    rel_tol: float = 0.03,
    max_probes: int = 40,
) -> Capacity:
    """Bracket the arrival rate at which mean SLO attainment falls below `target`
    (doubling or halving from `rate_start`), then bisect geometrically until the bracket
    is within `rel_tol`. Attainment need not be exactly monotone in the rate (finite
    seeded workloads); the search returns a bracket [ok, fail] of probed rates, which is
    a crossing of the target whatever the shape between them."""
    probes: list[Probe] = []

    def meets(rate: float) -> bool:
        if len(probes) >= max_probes:
            raise RuntimeError(f"capacity search did not converge in {max_probes} probes")
        p = judge(rate)
        probes.append(p)
        return p.mean_attainment >= target

    lo = hi = float(rate_start)
    if meets(lo):
        hi = lo * 2
        while meets(hi):
            lo, hi = hi, hi * 2
    else:
        lo = hi / 2
        while not meets(lo):
            if lo < 1e-6:
                raise RuntimeError("SLO attainment stays below the target at any rate")
            hi, lo = lo, lo / 2
    while hi / lo > 1 + rel_tol:
        mid = float(np.sqrt(lo * hi))
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return Capacity(lo, hi, probes)
