"""serve-engine: run the CPU serving engine on a seeded Poisson workload."""

from __future__ import annotations

from typing import Any

from llmserve import build
from llmserve.calibrate import arrival_rate, iteration_costs
from llmserve.engine import write_iterations_csv
from llmserve.metrics import REQUEST_METRICS, summarize, write_requests_csv
from llmserve.workload import generate


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    eng = build.engine(inp)
    cap = ctx.deps["capacity"].metrics
    if inp["load"] > 0:  # load relative to this machine's measured capacity
        inp = {**inp, "rate": "custom", "rate_rps": arrival_rate(inp["load"], cap["capacity_rps"])}
    spec = build.workload(inp)
    reqs = generate(spec)
    with ctx.timer("warmup"):
        eng.warmup()
    ctx.log.info(
        "serving %d requests at %.2f req/s, policy %s",
        spec.n_requests,
        spec.rate_rps,
        inp["policy"],
    )
    with ctx.timer("serve"), ctx.energy.measure() as e:
        eng.run(reqs)
    m = summarize(reqs, inp["slo_ttft_ms"], inp["slo_tbt_ms"])
    busy = sum(it.seconds for it in eng.iterations)
    write_iterations_csv(ctx.out_dir / "iterations.csv", eng.iterations)
    write_requests_csv(ctx.out_dir / "requests.csv", reqs)
    metrics = {k: m[k] for k in REQUEST_METRICS}
    metrics["busy_frac"] = busy / m["duration_s"] if m["duration_s"] else 0.0
    metrics["iterations"] = float(len(eng.iterations))
    metrics["utilisation"] = spec.rate_rps / cap["capacity_rps"]
    pf_ms, dec_ms = iteration_costs(eng.iterations)
    metrics["prefill_decode_ratio"] = pf_ms / dec_ms if dec_ms else 0.0
    # ~1.0 on an otherwise idle core; lower means other processes stole the CPU and
    # every wall-clock latency above is inflated by it
    metrics["cpu_share"] = sum(it.cpu_seconds for it in eng.iterations) / busy if busy else 0.0
    metrics["energy_per_token_mj"] = e.joules * 1e3 / max(m["output_tokens"], 1.0)
    return {
        "metrics": metrics,
        "files": {"iterations": "iterations.csv", "requests": "requests.csv"},
        "values": {
            "rate_rps": spec.rate_rps,
            "load": inp["load"],
            "capacity_rps": cap["capacity_rps"],
            "capacity_tok_s": cap["capacity_tok_s"],
            "calibration_prefill_decode_ratio": cap["prefill_decode_ratio"],
            "prefill_iter_ms": pf_ms,
            "decode_iter_ms": dec_ms,
            "output_tokens": m["output_tokens"],
            "duration_s": m["duration_s"],
            "energy_method": e.method,
            "energy_joules": e.joules,
            "model_params": eng.cfg.n_params(),
        },
    }
