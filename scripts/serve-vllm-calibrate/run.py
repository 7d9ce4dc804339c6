"""serve-vllm-calibrate: vLLM's offline capacity on this machine for one request mix."""

from __future__ import annotations

from typing import Any

from vllmserve import serving


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    # only the lengths matter offline: drawn exactly as the serving runs draw them, then
    # every arrival set to t=0
    reqs = serving.workload(inp, rate_rps=1.0)
    for r in reqs:
        r.arrival = 0.0
    with ctx.timer("calibrate"):
        res = serving.run_engine(inp, ctx.deps["model"].files["model"], reqs, ctx.out_dir, 840)
    its = res["iterations"]
    done = [r for r in reqs if r.finish is not None]
    dur = max(r.finish for r in done)  # type: ignore[type-var]
    pf_ms, dec_ms = serving.iteration_costs(its)
    serving.write_iterations_csv(ctx.out_dir / "iterations.csv", its)
    ctx.log.info(
        "capacity %.3f req/s, %.1f output tok/s; prefill iteration %.0f ms = %.1f decode iterations",
        len(done) / dur,
        sum(r.output_len for r in done) / dur,
        pf_ms,
        pf_ms / dec_ms if dec_ms else 0.0,
    )
    return {
        "metrics": {
            "capacity_rps": len(done) / dur,
            "capacity_tok_s": sum(r.output_len for r in done) / dur,
            "prefill_iter_ms": pf_ms,
            "decode_iter_ms": dec_ms,
            "prefill_decode_ratio": pf_ms / dec_ms if dec_ms else 0.0,
            "cpu_share": serving.cpu_share(its),
            "startup_s": res["startup"]["import_s"] + res["startup"]["engine_s"],
        },
        "values": {
            "vllm_version": res["vllm_version"],
            "engine": res["engine"],
            "startup": res["startup"],
            **serving.pool_values(res),
            "rss_peak_mb": res["rss_peak_mb"],
            "duration_s": dur,
        },
    }
