"""The efflab side of a vLLM run: workload in, driver run, the family's metrics out.

Runs in the script's own process (no vLLM, no torch): the seeded workload comes from
llmserve.workload and the metrics from llmserve.metrics, so a vLLM record carries the
same metric names as the home-made engine's and the simulator's.
"""

from __future__ import annotations

import csv
import statistics
from pathlib import Path
from typing import Any

from llmserve.metrics import summarize
from llmserve.scheduler import Request
from llmserve.workload import generate, resolve_rate, spec_from_inputs

from . import launch
from .machine import resolve_dtype

ITER_FIELDS = ("start_s", "seconds", "cpu_seconds", "prefill_tokens", "decode_tokens", "n_seqs")


def workload(inp: dict[str, Any], rate_rps: float | None = None) -> list[Request]:
    """The seeded requests of a run (`rate_rps` overrides the named rate)."""
    rate = (
        rate_rps
        if rate_rps is not None
        else resolve_rate(inp.get("rate", "custom"), inp.get("rate_rps", 1.0))
    )
    return generate(spec_from_inputs(inp, rate, inp["seed"]))


def run_engine(
    inp: dict[str, Any], model_dir: Path, reqs: list[Request], out_dir: Path, timeout_s: float
) -> dict[str, Any]:
    """Serve `reqs` on vLLM (arrivals as given; all 0 = offline) and fill their times in."""
    job = {
        "model": str(model_dir),
        "dtype": resolve_dtype(inp["dtype"]),
        "max_model_len": inp["max_model_len"],
        "max_num_seqs": inp["max_num_seqs"],
        "policy": inp["policy"],
        "threads": inp["threads"],
        "kv_cache_gib": inp["kv_cache_gib"],
        "vocab": inp["vocab"],
        "seed": inp["seed"],
        "requests": [
            {
                "rid": r.rid,
                "arrival": r.arrival,
                "prompt_len": r.prompt_len,
                "output_len": r.output_len,
            }
            for r in reqs
        ],
    }
    res = launch.call("driver", job, out_dir, timeout_s=timeout_s, name="vllm")
    by_id = {r["rid"]: r for r in res["requests"]}
    for r in reqs:
        got = by_id[r.rid]
        r.token_times = list(got["token_times"])
        r.generated = len(r.token_times)
        r.finish = got["finish"]
    return res


def iteration_costs(its: list[dict[str, Any]]) -> tuple[float, float]:
    """Median ms of iterations carrying prefill tokens and of decode-only ones."""
    pf = [it["seconds"] for it in its if it["prefill_tokens"] > 0]
    dec = [it["seconds"] for it in its if it["prefill_tokens"] == 0 and it["decode_tokens"] > 0]
    return (
        statistics.median(pf) * 1e3 if pf else 0.0,
        statistics.median(dec) * 1e3 if dec else 0.0,
    )


def cpu_share(its: list[dict[str, Any]]) -> float:
    """Engine thread CPU over wall time inside iterations: ~1 alone, lower when others ran."""
    busy = sum(it["seconds"] for it in its)
    return sum(it["cpu_seconds"] for it in its) / busy if busy else 0.0


def write_iterations_csv(path: Path, its: list[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ITER_FIELDS)
        for it in its:
            w.writerow([it[k] if isinstance(it[k], int) else f"{it[k]:.6f}" for k in ITER_FIELDS])


def vllm_ttft_ms(res: dict[str, Any]) -> list[float]:
    """vLLM's own first-token latencies (its RequestStateStats), where it reported them."""
    return [
        r["vllm"]["first_token_latency"] * 1e3
        for r in res["requests"]
        if r.get("vllm") and r["vllm"].get("first_token_latency", 0) > 0
    ]


def summary(reqs: list[Request], slo_ttft_ms: float, slo_tbt_ms: float) -> dict[str, float]:
    return summarize(reqs, slo_ttft_ms, slo_tbt_ms)


def pool_values(res: dict[str, Any]) -> dict[str, Any]:
    """A record's pool values: `engine_pool` (reused or fresh engine, its pid, start time,
    jobs before this one) and `delegated_cpu_s`, the CPU a pooled engine — outside the
    script's process tree — spent on this job, which the runtime counts as the job's."""
    pool = res.get("engine_pool") or {}
    return {
        "engine_pool": res.get("engine_pool"),
        "delegated_cpu_s": pool.get("job_cpu_s", 0.0) if pool.get("pooled") else 0.0,
    }
