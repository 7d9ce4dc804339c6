"""serve-engine: run the CPU serving engine on a seeded Poisson workload."""

from __future__ import annotations

from typing import Any

from llmserve import build
from llmserve.engine import write_iterations_csv
from llmserve.metrics import REQUEST_METRICS, summarize, write_requests_csv
from llmserve.workload import generate


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    eng = build.engine(inp)
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
    # ~1.0 on an otherwise idle core; lower means other processes stole the CPU and
    # every wall-clock latency above is inflated by it
    metrics["cpu_share"] = sum(it.cpu_seconds for it in eng.iterations) / busy if busy else 0.0
    metrics["energy_per_token_mj"] = e.joules * 1e3 / max(m["output_tokens"], 1.0)
    return {
        "metrics": metrics,
        "files": {"iterations": "iterations.csv", "requests": "requests.csv"},
        "values": {
            "rate_rps": spec.rate_rps,
            "output_tokens": m["output_tokens"],
            "duration_s": m["duration_s"],
            "energy_method": e.method,
            "energy_joules": e.joules,
            "model_params": eng.cfg.n_params(),
        },
    }
