"""Capacity calibration: the offline drain is a real engine run on the workload's own
request mix, load turns into a rate by it, and one calibration is shared by every
policy and load of an experiment (cached like any invocation)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from conftest import REPO, add_family_lib  # noqa: E402

add_family_lib("serving")

from llmserve.calibrate import arrival_rate, measure  # noqa: E402
from llmserve.engine import Engine  # noqa: E402
from llmserve.model import ModelConfig  # noqa: E402
from llmserve.scheduler import Limits, make_scheduler  # noqa: E402
from llmserve.workload import WorkloadSpec, generate  # noqa: E402

from efflab.plan.planner import load_experiment, plan_experiment  # noqa: E402


def test_offline_drain_serves_everything_and_prefill_dominates():
    cfg = ModelConfig(d_model=64, layers=2, heads=4, vocab=256, max_context=600)
    eng = Engine(cfg, make_scheduler("prefill-first", limits=Limits(max_batch=8)), seed=0)
    spec = WorkloadSpec(n_requests=6, rate_rps=1.0, prompt_len=(384, 512), output_len=(8, 16))
    reqs = generate(spec)
    cap = measure(eng, reqs)
    assert cap.n_requests == 6 and all(r.arrival == 0.0 and r.done for r in reqs)
    last = max(r.finish for r in reqs)
    assert cap.requests_per_s == pytest.approx(6 / last)
    assert cap.output_tok_s == pytest.approx(sum(r.output_len for r in reqs) / last)
    # whole 384-512-token prompts against <= 8 one-token decodes
    assert cap.prefill_decode_ratio > 3


def test_load_is_a_fraction_of_capacity():
    assert arrival_rate(1.3, 2.0) == pytest.approx(2.6)
    with pytest.raises(ValueError):
        arrival_rate(0.0, 2.0)


def test_one_calibration_shared_by_every_policy_and_load():
    exp = load_experiment(REPO, "serving-schedulers")
    plan = plan_experiment(REPO, "serving-schedulers")
    engines = [i for i in plan.invocations.values() if i.alias == "serve-engine"]
    calib = {i.deps["capacity"]["key"] for i in engines}
    points = {(i.inputs["policy"], i.inputs["load"]) for i in engines}
    assert len(points) == 8 and len(engines) == 8 * exp.repetitions and len(calib) == 1
    (key,) = calib
    cal = plan.invocations[key]
    assert cal.alias == "serve-calibrate"
    assert cal.inputs["prompt_len_min"] == exp.inputs["prompt_len_min"]
    assert cal.inputs["d_model"] == exp.inputs["d_model"]
