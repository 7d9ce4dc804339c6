"""Seeded open-loop workload: Poisson arrivals, prompt/output lengths from ranges.

Why: the same seed gives the same request set for every policy and repetition, so
differences between runs come from scheduling and timing noise, not from the workload.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scheduler import Request

# Named load levels (req/s) for the CPU engine's default model, calibrated on a 2-core
# AMD EPYC box with one torch thread: "moderate" keeps the engine roughly half busy,
# "high" near saturation for prefill-first. Use rate=custom + rate_rps elsewhere.
RATE_LEVELS = {"low": 4.0, "moderate": 8.0, "high": 14.0}


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate; lengths are inclusive ranges."""

    n_requests: int = 48
    rate_rps: float = 8.0
    prompt_len: tuple[int, int] = (64, 384)
    output_len: tuple[int, int] = (16, 64)
    length_dist: str = "uniform"  # or "lognormal": heavy-ish tail, clipped to the range
    seed: int = 0


def _draw(rng: np.random.Generator, lo: int, hi: int, n: int, dist: str) -> np.ndarray:
    if dist == "uniform":
        return rng.integers(lo, hi + 1, size=n)
    if dist == "lognormal":
        median = np.sqrt(lo * hi)
        sigma = max(np.log(hi / lo) / 4.0, 1e-6)  # ~95% inside [lo, hi] before clipping
        return np.clip(np.rint(rng.lognormal(np.log(median), sigma, size=n)), lo, hi).astype(int)
    raise ValueError(f"unknown length distribution {dist!r}")


def resolve_rate(rate: str, rate_rps: float) -> float:
    """A named level from RATE_LEVELS, or `rate_rps` when rate == 'custom'."""
    if rate == "custom":
        if rate_rps <= 0:
            raise ValueError(f"rate_rps must be > 0, got {rate_rps}")
        return float(rate_rps)
    return RATE_LEVELS[rate]


def spec_from_inputs(inp: dict, rate_rps: float, seed: int, n_requests: int | None = None) -> WorkloadSpec:  # fmt: skip
    """The workload a serving script's inputs describe (n_requests, prompt/output length
    ranges, length_dist), at `rate_rps` with `seed`."""
    return WorkloadSpec(
        n_requests=inp["n_requests"] if n_requests is None else n_requests,
        rate_rps=rate_rps,
        prompt_len=(inp["prompt_len_min"], inp["prompt_len_max"]),
        output_len=(inp["output_len_min"], inp["output_len_max"]),
        length_dist=inp["length_dist"],
        seed=seed,
    )


def generate(spec: WorkloadSpec) -> list[Request]:
    """Requests sorted by arrival time (seconds from the start of the run)."""
    if spec.rate_rps <= 0:
        raise ValueError(f"rate must be > 0, got {spec.rate_rps}")
    rng = np.random.default_rng(spec.seed)
    gaps = rng.exponential(1.0 / spec.rate_rps, size=spec.n_requests)
    arrivals = np.cumsum(gaps) - gaps[0]  # first request at t=0
    prompts = _draw(rng, *spec.prompt_len, spec.n_requests, spec.length_dist)
    outputs = _draw(rng, *spec.output_len, spec.n_requests, spec.length_dist)
    return [
        Request(rid=i, arrival=float(a), prompt_len=int(p), output_len=int(o))
        for i, (a, p, o) in enumerate(zip(arrivals, prompts, outputs, strict=True))
    ]
