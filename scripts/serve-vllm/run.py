"""serve-vllm: vLLM's CPU engine serving a seeded Poisson workload in real time."""

from __future__ import annotations

from typing import Any

from llmserve.metrics import REQUEST_METRICS, pct, write_requests_csv
from vllmserve import serving

from efflab.runtime.energy import ESTIMATED, estimate_joules


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    cap = ctx.deps["capacity"].metrics
    rate = inp["load"] * cap["capacity_rps"] if inp["load"] > 0 else inp["rate_rps"]
    reqs = serving.workload(inp, rate_rps=rate)
    ctx.log.info(
        "vLLM serving %d requests at %.3f req/s (load %.2f of %.3f req/s), policy %s, max_num_seqs %d",
        len(reqs),
        rate,
        rate / cap["capacity_rps"],
        cap["capacity_rps"],
        inp["policy"],
        inp["max_num_seqs"],
    )
    with ctx.timer("serve"):
        res = serving.run_engine(inp, ctx.deps["model"].files["model"], reqs, ctx.out_dir, 840)
    its = res["iterations"]
    m = serving.summary(reqs, inp["slo_ttft_ms"], inp["slo_tbt_ms"])
    busy = sum(it["seconds"] for it in its)
    cpu = sum(it["cpu_seconds"] for it in its)
    serving.write_iterations_csv(ctx.out_dir / "iterations.csv", its)
    write_requests_csv(ctx.out_dir / "requests.csv", reqs)
    pf_ms, dec_ms = serving.iteration_costs(its)
    metrics = {k: m[k] for k in REQUEST_METRICS}
    vt = serving.vllm_ttft_ms(res)
    if vt:
        metrics["vllm_ttft_p50_ms"] = pct(vt, 50)
    n_tok = sum(it["prefill_tokens"] + it["decode_tokens"] for it in its)
    # energy is an estimate (no RAPL here): the serving loop's wall time and the engine
    # thread's CPU time through the runtime's labelled linear model
    joules = estimate_joules(m["duration_s"], cpu)
    metrics.update(
        {
            "busy_frac": busy / m["duration_s"] if m["duration_s"] else 0.0,
            "iterations": float(len(its)),
            "tokens_per_iteration": n_tok / len(its) if its else 0.0,
            "max_iter_ms": max((it["seconds"] for it in its), default=0.0) * 1e3,
            "prefill_iterations": float(sum(1 for it in its if it["prefill_tokens"] > 0)),
            "preemptions": float(res["preempted"]),
            "utilisation": rate / cap["capacity_rps"],
            "prefill_decode_ratio": pf_ms / dec_ms if dec_ms else 0.0,
            "cpu_share": cpu / busy if busy else 0.0,
            "energy_per_token_mj": joules * 1e3 / max(m["output_tokens"], 1.0),
            "startup_s": res["startup"]["import_s"] + res["startup"]["engine_s"],
            "rss_mb": res["rss_peak_mb"],
        }
    )
    return {
        "metrics": metrics,
        "files": {"iterations": "iterations.csv", "requests": "requests.csv"},
        "values": {
            "rate_rps": rate,
            "capacity_rps": cap["capacity_rps"],
            "prefill_iter_ms": pf_ms,
            "decode_iter_ms": dec_ms,
            "output_tokens": m["output_tokens"],
            "duration_s": m["duration_s"],
            "energy_method": ESTIMATED,
            "energy_joules": joules,
            "vllm_version": res["vllm_version"],
            "torch_version": res["torch_version"],
            "engine": res["engine"],
            "startup": res["startup"],
            **serving.pool_values(res),
        },
    }
