"""serve-vllm-loadgen: MLPerf LoadGen Server/Offline run against vLLM's CPU engine."""

from __future__ import annotations

from typing import Any

from llmserve.metrics import summarize, write_requests_csv
from llmserve.mlperf_logs import loadgen_metrics, parse_detail, parse_summary
from llmserve.scheduler import Request
from vllmserve import launch, serving
from vllmserve.machine import resolve_dtype


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    cap = ctx.deps["capacity"].metrics
    qps = inp["load"] * cap["capacity_rps"] if inp["load"] > 0 else inp["rate_rps"]
    samples = [(r.prompt_len, r.output_len) for r in serving.workload(inp, rate_rps=qps)]
    log_dir = ctx.out_dir / "loadgen"
    job = {
        "model": str(ctx.deps["model"].files["model"]),
        "dtype": resolve_dtype(inp["dtype"]),
        **{
            k: inp[k]
            for k in (
                "max_model_len",
                "max_num_seqs",
                "policy",
                "threads",
                "kv_cache_gib",
                "vocab",
                "seed",
            )
        },
        "samples": samples,
        "scenario": inp["scenario"],
        "target_qps": qps,
        "min_queries": inp["n_requests"],
        "min_duration_ms": inp["min_duration_ms"],
        "ttft_ms": inp["ttft_ms"],
        "tpot_ms": inp["tpot_ms"],
        "log_dir": str(log_dir),
    }
    ctx.log.info(
        "LoadGen %s at %.3f QPS against vLLM (%d queries)", inp["scenario"], qps, inp["n_requests"]
    )
    with ctx.timer("loadgen"):
        res = launch.call("loadgen_driver", job, ctx.out_dir, timeout_s=840, name="vllm")
    reqs = [
        Request(
            rid=i,
            arrival=r["arrival"],
            prompt_len=r["prompt_len"],
            output_len=r["output_len"],
            generated=len(r["token_times"]),
            token_times=r["token_times"],
            finish=r["finish"],
        )  # fmt: skip
        for i, r in enumerate(res["requests"])
    ]
    own = summarize(reqs)
    d = parse_detail(log_dir / "mlperf_log_detail.txt")
    summary = parse_summary(log_dir / "mlperf_log_summary.txt")
    metrics = loadgen_metrics(d)
    metrics.update(
        {
            "queries": float(len(reqs)),
            "engine_ttft_p50_ms": own["ttft_p50_ms"],
            "engine_tbt_p99_ms": own["tbt_p99_ms"],
            "utilisation": qps / cap["capacity_rps"],
            "startup_s": res["startup"]["import_s"] + res["startup"]["engine_s"],
        }
    )
    metrics = {k: v for k, v in metrics.items() if v == v}  # NaN: not measured
    serving.write_iterations_csv(ctx.out_dir / "iterations.csv", res["iterations"])
    write_requests_csv(ctx.out_dir / "requests.csv", reqs)
    return {
        "metrics": metrics,
        "files": {
            "summary": "loadgen/mlperf_log_summary.txt",
            "detail": "loadgen/mlperf_log_detail.txt",
            "iterations": "iterations.csv",
        },
        "values": {
            "target_qps": qps,
            "capacity_rps": cap["capacity_rps"],
            "result": summary.get("Result is"),
            "invalid_reason": d.get("result_invalid_reason"),
            "vllm_version": res["vllm_version"],
            "engine": res["engine"],
            "startup": res["startup"],
            **serving.pool_values(res),
        },
    }
