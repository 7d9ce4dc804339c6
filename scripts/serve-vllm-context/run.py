"""serve-vllm-context: vLLM's time between tokens after short, medium and long prompts."""

from __future__ import annotations

import statistics
from typing import Any

from llmserve.metrics import write_requests_csv
from llmserve.scheduler import Request
from vllmserve import serving


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    lengths = {"short": inp["ctx_short"], "mid": inp["ctx_mid"], "long": inp["ctx_long"]}
    reqs, rid = [], 0
    # interleaved lengths, all queued at t=0 and served one at a time (max_num_seqs 1):
    # a drift of the machine over the run touches every length alike
    for _ in range(inp["requests_per_length"]):
        for n in lengths.values():
            reqs.append(Request(rid=rid, arrival=0.0, prompt_len=n, output_len=inp["output_len"]))
            rid += 1
    engine = {**inp, "policy": "whole-prompt", "max_num_seqs": 1}
    with ctx.timer("serve"):
        res = serving.run_engine(engine, ctx.deps["model"].files["model"], reqs, ctx.out_dir, 840)
    write_requests_csv(ctx.out_dir / "requests.csv", reqs)
    metrics: dict[str, float] = {}
    for name, n in lengths.items():
        gaps = [
            (b - a) * 1e3
            for r in reqs
            if r.prompt_len == n
            for a, b in zip(r.token_times, r.token_times[1:], strict=False)
        ]
        metrics[f"tbt_{name}_ms"] = statistics.median(gaps)
    h, L, kvh = inp["hidden"], inp["layers"], inp["kv_heads"]
    window = inp["sliding_window"] or inp["ctx_long"]
    # per decode step: K and V of every attended token, every layer, float32
    metrics["kv_bytes_long_mb"] = L * 2 * kvh * 64 * 4 * min(window, inp["ctx_long"]) / 1e6
    per_layer = h * h * 2 + 2 * h * kvh * 64 + 3 * h * inp["intermediate"]
    metrics["weight_mb"] = (L * per_layer + h * inp["vocab"]) * 4 / 1e6
    metrics["cpu_share"] = serving.cpu_share(res["iterations"])
    metrics["startup_s"] = res["startup"]["import_s"] + res["startup"]["engine_s"]
    ctx.log.info(
        "TBT %s ms at contexts %s (sliding window %s)",
        [round(metrics[f"tbt_{k}_ms"], 2) for k in lengths],
        list(lengths.values()),
        inp["sliding_window"] or "none",
    )
    return {
        "metrics": metrics,
        "files": {"requests": "requests.csv"},
        "values": {
            "vllm_version": res["vllm_version"],
            "engine": res["engine"],
            "startup": res["startup"],
            **serving.pool_values(res),
        },
    }
