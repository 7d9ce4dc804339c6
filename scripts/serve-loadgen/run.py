"""serve-loadgen: MLPerf LoadGen Server/Offline run against the CPU serving engine."""

from __future__ import annotations

from typing import Any

from llmserve import build
from llmserve.calibrate import arrival_rate
from llmserve.engine import write_iterations_csv
from llmserve.loadgen_sut import LoadGenConfig, run_loadgen
from llmserve.metrics import pct, summarize, tpot_ms
from llmserve.mlperf_logs import loadgen_metrics, parse_detail, parse_summary
from llmserve.workload import generate


def run(ctx: Any) -> dict[str, Any]:
    inp = ctx.inputs
    eng = build.engine(inp)
    cap = ctx.deps["capacity"].metrics
    if inp["load"] > 0:  # load relative to this machine's measured capacity, as serve-engine
        inp = {**inp, "rate": "custom", "rate_rps": arrival_rate(inp["load"], cap["capacity_rps"])}
    spec = build.workload(inp)
    samples = [(r.prompt_len, r.output_len) for r in generate(spec)]
    cfg = LoadGenConfig(
        scenario=inp["scenario"],
        target_qps=spec.rate_rps,
        min_queries=inp["n_requests"],
        min_duration_ms=inp["min_duration_ms"],
        ttft_ms=inp["ttft_ms"],
        tpot_ms=inp["tpot_ms"],
        trace=inp["trace"],
        seed=inp["seed"],
    )
    with ctx.timer("warmup"):
        eng.warmup()
    log_dir = ctx.out_dir / "loadgen"
    with ctx.timer("loadgen"), ctx.energy.measure() as e:
        sut = run_loadgen(eng, samples, cfg, log_dir)
    summary = parse_summary(log_dir / "mlperf_log_summary.txt")
    d = parse_detail(log_dir / "mlperf_log_detail.txt")
    own = summarize(sut.requests)
    metrics = loadgen_metrics(d)
    metrics.update(
        {
            "queries": float(len(sut.requests)),
            "engine_ttft_p50_ms": own["ttft_p50_ms"],
            "engine_tpot_p50_ms": pct([tpot_ms(r) for r in sut.requests if r.finish], 50),
            "engine_tbt_p99_ms": own["tbt_p99_ms"],
            "energy_per_token_mj": e.joules * 1e3 / max(own["output_tokens"], 1.0),
            "utilisation": spec.rate_rps / cap["capacity_rps"],
        }
    )
    metrics = {k: v for k, v in metrics.items() if v == v}  # NaN: not measured
    write_iterations_csv(ctx.out_dir / "iterations.csv", eng.iterations)
    return {
        "metrics": metrics,
        "files": {
            "summary": "loadgen/mlperf_log_summary.txt",
            "detail": "loadgen/mlperf_log_detail.txt",
            "iterations": "iterations.csv",
        },
        "values": {
            "target_qps": spec.rate_rps,
            "load": inp["load"],
            "capacity_rps": cap["capacity_rps"],
            "capacity_tok_s": cap["capacity_tok_s"],
            "result": summary.get("Result is"),
            "invalid_reason": d.get("result_invalid_reason"),
            "energy_method": e.method,
            "engine": {k: own[k] for k in own},
        },
    }
