"""MLPerf LoadGen harness around the real engine: a short Server run completes, the log
folder is created, and LoadGen's parsed TTFT/TPOT match the engine's own clocks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("mlperf_loadgen")
from conftest import REPO, add_family_lib, efflab  # noqa: E402

add_family_lib("serving")

from llmserve.engine import Engine  # noqa: E402
from llmserve.loadgen_sut import LoadGenConfig, parse_detail, parse_summary, run_loadgen  # noqa: E402
from llmserve.metrics import pct, tpot_ms  # noqa: E402
from llmserve.model import ModelConfig  # noqa: E402
from llmserve.scheduler import make_scheduler  # noqa: E402
from llmserve.workload import WorkloadSpec, generate  # noqa: E402

CFG = ModelConfig(d_model=64, layers=2, heads=2, vocab=128, max_context=128)


def _samples(n: int) -> list[tuple[int, int]]:
    reqs = generate(WorkloadSpec(n_requests=n, prompt_len=(8, 64), output_len=(4, 16), seed=2))
    return [(r.prompt_len, r.output_len) for r in reqs]


def test_server_run_matches_engine_clock(tmp_path):
    eng = Engine(CFG, make_scheduler("chunked-64"), seed=0)
    eng.warmup(16)
    log_dir = tmp_path / "not" / "yet" / "there"
    cfg = LoadGenConfig(scenario="Server", target_qps=25.0, min_queries=16)
    sut = run_loadgen(eng, _samples(16), cfg, log_dir)
    assert len(sut.requests) >= 16 and all(r.finish is not None for r in sut.requests)
    assert all(r.generated == r.output_len for r in sut.requests)
    d = parse_detail(log_dir / "mlperf_log_detail.txt")
    s = parse_summary(log_dir / "mlperf_log_summary.txt")
    assert s["Scenario"] == "Server" and d["result_validity"] in ("VALID", "INVALID")
    assert int(d["result_query_count"]) == len(sut.requests)
    assert (log_dir / "mlperf_log_trace.json").stat().st_size == 0  # trace off by default
    lg_ttft = d["result_first_token_50.00_percentile_latency_ns"] / 1e6
    own_ttft = pct([(r.token_times[0] - r.arrival) * 1e3 for r in sut.requests], 50)
    # LoadGen starts the clock at the scheduled issue time, the engine when IssueQuery
    # runs: the gap is issue-thread latency (GIL, a busy CPU), a few ms at most.
    assert abs(lg_ttft - own_ttft) <= 0.25 * own_ttft + 10.0, (lg_ttft, own_ttft)
    lg_tpot = d["result_time_per_output_token_50.00_percentile_ns"] / 1e6
    own_tpot = pct([tpot_ms(r) for r in sut.requests], 50)
    assert abs(lg_tpot - own_tpot) <= 0.25 * own_tpot + 1.0, (lg_tpot, own_tpot)
    tokens = sum(r.generated for r in sut.requests)
    span = max(r.finish for r in sut.requests) - min(r.arrival for r in sut.requests)
    assert np.isclose(d["result_completed_tokens_per_second"], tokens / span, rtol=0.25)


def test_offline_run_completes(tmp_path):
    eng = Engine(CFG, make_scheduler("prefill-first"), seed=0)
    cfg = LoadGenConfig(scenario="Offline", target_qps=100.0, min_queries=12, min_duration_ms=0)
    sut = run_loadgen(eng, _samples(12), cfg, tmp_path / "lg")
    d = parse_detail(tmp_path / "lg" / "mlperf_log_detail.txt")
    assert int(d["result_query_count"]) == 1  # Offline: one query holding every sample
    assert len(sut.requests) == 12 and all(r.finish is not None for r in sut.requests)
    assert d["result_samples_per_second"] > 0


TINY = {  # a model and request mix small enough for a few-second run
    "n_requests": 6,
    "calibration_requests": 4,
    "d_model": 32,
    "layers": 1,
    "heads": 2,
    "vocab": 128,
    "prompt_len_min": 8,
    "prompt_len_max": 32,
    "output_len_min": 2,
    "output_len_max": 6,
    "max_context": 128,
}


def _serving_project(root: Path) -> Path:
    """A throwaway project with the real serve-loadgen, serve-calibrate and their lib."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", root / "Snakefile")
    shutil.copytree(REPO / "workflows/rules", root / "workflows/rules")
    for alias in ("serve-loadgen", "serve-calibrate", "_lib/serving"):
        shutil.copytree(REPO / "scripts" / alias, root / "scripts" / alias)
    shutil.copytree(REPO / "envs", root / "envs", ignore=shutil.ignore_patterns("wheels"))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _outputs(repo: Path, alias: str, key: str) -> dict:
    return json.loads((repo / "artifacts" / alias / key / "outputs.json").read_text())


def test_load_is_a_fraction_of_the_calibrated_capacity(tmp_path):
    """`load` sets LoadGen's target QPS to load x the capacity serve-calibrate measured
    (a real calibration, then a real LoadGen Server run, host runtime); load 0 (the
    default) keeps the named rate, so existing specs mean what they meant."""
    repo = _serving_project(tmp_path / "proj")
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]

    def run(load: float) -> dict:
        r = efflab(repo, "script", "run", "serving,loadgen", "--runtime", "host", "--json",
                   "-q", *sets, "--set", f"load={load}", timeout=600)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        got = json.loads(r.stdout)
        assert got["status"] == "ok", got
        return _outputs(repo, "serve-loadgen", got["key"])

    hot = run(1.2)
    inv = json.loads(
        (repo / "artifacts/serve-loadgen" / hot["key"] / "invocation.json").read_text()
    )
    cal_key = inv["deps"]["capacity"]["key"]
    cap = _outputs(repo, "serve-calibrate", cal_key)["metrics"]["capacity_rps"]
    assert cap > 0
    assert hot["values"]["target_qps"] == pytest.approx(1.2 * cap)
    assert hot["values"]["capacity_rps"] == pytest.approx(cap)
    assert hot["metrics"]["utilisation"] == pytest.approx(1.2)
    assert hot["metrics"]["queries"] == TINY["n_requests"]

    default = run(0)  # the named rate (moderate: 8 QPS), same calibration reused
    assert default["values"]["target_qps"] == pytest.approx(8.0)
    assert default["metrics"]["utilisation"] == pytest.approx(8.0 / cap)
    assert len(list((repo / "artifacts/serve-calibrate").iterdir())) == 1


def test_serving_loadgen_plans_one_shared_calibration():
    from efflab.plan.planner import load_experiment, plan_experiment

    exp = load_experiment(REPO, "serving-loadgen")
    plan = plan_experiment(REPO, "serving-loadgen")
    runs = [i for i in plan.invocations.values() if i.alias == "serve-loadgen"]
    assert (
        runs and {i.inputs["load"] for i in runs} == {exp.inputs["load"]} and exp.inputs["load"] > 0
    )
    (key,) = {i.deps["capacity"]["key"] for i in runs}  # every policy and scenario: one
    cal = plan.invocations[key]
    assert cal.alias == "serve-calibrate"
    for k in ("prompt_len_min", "prompt_len_max", "d_model", "layers", "max_batch", "seed"):
        assert cal.inputs[k] == runs[0].inputs[k], k
