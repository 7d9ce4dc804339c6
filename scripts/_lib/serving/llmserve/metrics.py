"""Serving metrics from finished requests (TTFT, TBT, end-to-end latency, throughput).

Why one place: the engine, the LoadGen harness and the simulator all report the same
named metrics, so a paper claim can compare them across scripts.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .scheduler import Request

# per-request latency/throughput metrics every serving script reports (engine and sim)
REQUEST_METRICS = (
    "ttft_p50_ms",
    "ttft_p90_ms",
    "ttft_p99_ms",
    "tbt_p50_ms",
    "tbt_p99_ms",
    "tbt_max_ms",
    "latency_p50_ms",
    "latency_p99_ms",
    "throughput_tok_s",
    "requests_completed",
    "slo_attainment",
)


def pct(values: list[float] | np.ndarray, q: float) -> float:
    """Percentile (linear interpolation); NaN for no data."""
    arr = np.asarray(values, dtype=float)
    return float(np.percentile(arr, q)) if arr.size else float("nan")


def tpot_ms(r: Request) -> float:
    """Mean time per output token after the first (DistServe's per-request TPOT)."""
    n = len(r.token_times)
    return (r.token_times[-1] - r.token_times[0]) * 1e3 / (n - 1) if n > 1 else 0.0


def summarize(
    reqs: list[Request], slo_ttft_ms: float | None = None, slo_tbt_ms: float | None = None
) -> dict[str, float]:
    """Per-run metrics in ms / tokens per second over completed requests.

    SLO attainment (if both SLOs given): share of requests with TTFT <= slo_ttft_ms and
    per-request TPOT <= slo_tbt_ms.
    """
    done = [r for r in reqs if r.finish is not None]
    ttft = [(r.token_times[0] - r.arrival) * 1e3 for r in done]
    tbt = [g * 1e3 for r in done for g in np.diff(r.token_times)]
    e2e = [(r.finish - r.arrival) * 1e3 for r in done]  # type: ignore[operator]
    tokens = sum(r.generated for r in done)
    span = (max(r.finish for r in done) - min(r.arrival for r in reqs)) if done else 0.0  # type: ignore[type-var]
    out = {
        "ttft_p50_ms": pct(ttft, 50),
        "ttft_p90_ms": pct(ttft, 90),
        "ttft_p99_ms": pct(ttft, 99),
        "tbt_p50_ms": pct(tbt, 50),
        "tbt_p99_ms": pct(tbt, 99),
        "tbt_max_ms": float(max(tbt)) if tbt else float("nan"),
        "latency_p50_ms": pct(e2e, 50),
        "latency_p99_ms": pct(e2e, 99),
        "throughput_tok_s": tokens / span if span > 0 else 0.0,
        "requests_completed": float(len(done)),
        "output_tokens": float(tokens),
        "duration_s": span,
    }
    if slo_ttft_ms is not None and slo_tbt_ms is not None:
        ok = [
            (r.token_times[0] - r.arrival) * 1e3 <= slo_ttft_ms
            and (len(r.token_times) < 2 or tpot_ms(r) <= slo_tbt_ms)
            for r in done
        ]
        out["slo_attainment"] = float(np.mean(ok)) if ok else 0.0
    return out


def write_requests_csv(path: Path, reqs: list[Request]) -> None:
    """One row per request: lengths, arrival, first token, finish (seconds)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["rid", "arrival_s", "prompt_len", "output_len", "first_token_s", "finish_s"])
        for r in reqs:
            first = r.token_times[0] if r.token_times else ""
            w.writerow(
                [
                    r.rid,
                    f"{r.arrival:.6f}",
                    r.prompt_len,
                    r.output_len,
                    first if first == "" else f"{first:.6f}",
                    "" if r.finish is None else f"{r.finish:.6f}",
                ]
            )
