"""Latency summaries shared by the benchmark scripts (numpy only)."""

from __future__ import annotations

import numpy as np


def latency_summary_us(samples_ns: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/mean in microseconds from per-call durations in nanoseconds."""
    us = np.asarray(samples_ns, dtype=np.float64) / 1e3
    p50, p90, p99 = np.percentile(us, [50, 90, 99])
    return {
        "latency_p50_us": float(p50),
        "latency_p90_us": float(p90),
        "latency_p99_us": float(p99),
        "latency_mean_us": float(us.mean()),
    }
