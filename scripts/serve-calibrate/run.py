"""serve-calibrate: the engine's capacity on this machine for one request mix."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from llmserve import build
from llmserve.calibrate import measure
from llmserve.workload import generate


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    eng = build.engine(inp)
    # the arrival rate is irrelevant offline (all requests queued at t=0); only the
    # lengths matter, drawn exactly as the serving runs with the same seed draw them
    spec = build.workload({**inp, "rate": "custom", "rate_rps": 1.0})
    reqs = generate(spec)
    with ctx.timer("warmup"):
        eng.warmup()
    with ctx.timer("calibrate"):
        cap = measure(eng, reqs)
    ctx.log.info(
        "capacity %.2f req/s, %.0f output tok/s (policy %s); prefill iteration %.1f ms = %.1f decode iterations",
        cap.requests_per_s,
        cap.output_tok_s,
        inp["policy"],
        cap.prefill_iter_ms,
        cap.prefill_decode_ratio,
    )
    return {
        "metrics": {
            "capacity_rps": cap.requests_per_s,
            "capacity_tok_s": cap.output_tok_s,
            "prefill_iter_ms": cap.prefill_iter_ms,
            "decode_iter_ms": cap.decode_iter_ms,
            "prefill_decode_ratio": cap.prefill_decode_ratio,
            "cpu_share": cap.cpu_share,
        },
        "values": {**asdict(cap), "policy": inp["policy"], "model_params": eng.cfg.n_params()},
    }
