"""Capacity of the engine on this machine, and load stated relative to it.

Why: a fixed arrival rate (req/s) is a different utilisation on every machine, so
"high load" meant saturation on one box and a half-idle engine on another. The
calibration serves the workload's request mix offline (every request queued at t=0)
under a reference policy and reports the sustained request and token rates; serving
runs then ask for `load` x capacity, so a load of 1.2 overloads the engine everywhere.
It also reports how many decode iterations one whole-prompt prefill iteration costs
(the regime Sarathi-Serve's mechanism needs).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .engine import Engine, Iteration
from .scheduler import Request


@dataclass(frozen=True)
class Capacity:
    """Offline throughput of one engine configuration on one request mix."""

    requests_per_s: float
    output_tok_s: float
    duration_s: float
    n_requests: int
    prefill_iter_ms: float  # median iteration that carries prefill tokens
    decode_iter_ms: float  # median decode-only iteration
    cpu_share: float

    @property
    def prefill_decode_ratio(self) -> float:
        return self.prefill_iter_ms / self.decode_iter_ms if self.decode_iter_ms else 0.0


def iteration_costs(its: list[Iteration]) -> tuple[float, float]:
    """Median milliseconds of iterations with prefill tokens and of decode-only ones."""
    pf = [it.seconds for it in its if it.prefill_tokens > 0]
    dec = [it.seconds for it in its if it.prefill_tokens == 0 and it.decode_tokens > 0]
    med = lambda xs: statistics.median(xs) * 1e3 if xs else 0.0  # noqa: E731
    return med(pf), med(dec)


def measure(engine: Engine, requests: list[Request]) -> Capacity:
    """Serve `requests` with every arrival at t=0 and time until the last finishes."""
    for r in requests:
        r.arrival = 0.0
    engine.run(requests)
    done = [r for r in requests if r.finish is not None]
    dur = max(r.finish for r in done if r.finish is not None)
    busy = sum(it.seconds for it in engine.iterations)
    pf_ms, dec_ms = iteration_costs(engine.iterations)
    return Capacity(
        requests_per_s=len(done) / dur,
        output_tok_s=sum(r.output_len for r in done) / dur,
        duration_s=dur,
        n_requests=len(done),
        prefill_iter_ms=pf_ms,
        decode_iter_ms=dec_ms,
        cpu_share=sum(it.cpu_seconds for it in engine.iterations) / busy if busy else 0.0,
    )


def arrival_rate(load: float, capacity_rps: float) -> float:
    """Requests/s for a utilisation `load` of the calibrated capacity."""
    if load <= 0 or capacity_rps <= 0:
        raise ValueError(f"load and capacity must be > 0, got {load}, {capacity_rps}")
    return load * capacity_rps
