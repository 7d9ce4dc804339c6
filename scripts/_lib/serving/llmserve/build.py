"""Turn a script's validated inputs into engine, scheduler and workload objects.

Why: serve-engine and serve-loadgen take the same engine/workload inputs; one mapping
keeps their meaning identical.
"""

from __future__ import annotations

from typing import Any

from .engine import Engine
from .model import ModelConfig
from .scheduler import Limits, make_scheduler
from .workload import WorkloadSpec, resolve_rate


def model_config(inputs: dict[str, Any]) -> ModelConfig:
    return ModelConfig(
        d_model=inputs["d_model"],
        layers=inputs["layers"],
        heads=inputs["heads"],
        vocab=inputs["vocab"],
        max_context=inputs["max_context"],
    )


def engine(inputs: dict[str, Any]) -> Engine:
    """Engine with the requested policy; model weights seeded by `seed`."""
    sched = make_scheduler(
        inputs["policy"], inputs["token_budget"], Limits(max_batch=inputs["max_batch"])
    )
    return Engine(model_config(inputs), sched, seed=inputs["seed"], threads=inputs["threads"])


def workload(inputs: dict[str, Any]) -> WorkloadSpec:
    return WorkloadSpec(
        n_requests=inputs["n_requests"],
        rate_rps=resolve_rate(inputs["rate"], inputs["rate_rps"]),
        prompt_len=(inputs["prompt_len_min"], inputs["prompt_len_max"]),
        output_len=(inputs["output_len_min"], inputs["output_len_max"]),
        length_dist=inputs["length_dist"],
        seed=inputs["seed"],
    )
