"""The vLLM engine pool (vllmserve.pool) on the real engine, no mocks.

What must hold: points with the same engine configuration share one engine (the second
attaches in well under a second instead of a ~15 s start) and get the same requests and
token totals as a fresh engine; another configuration gets another engine; a killed
daemon is replaced; a killed client takes its job down with it (no job left half-run);
EFFLAB_VLLM_POOL=0 is a fresh process per point, as before the pool.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import test_serving_vllm as base
from conftest import add_family_lib

add_family_lib("vllmserve")

from vllmserve import launch, pool  # noqa: E402

pytestmark = pytest.mark.skipif(bool(base.NO_VLLM), reason=base.NO_VLLM)
# the tiny model and this module's own pool folder (shut down at the end), as there
model_dir, engine_pool = base.model_dir, base.engine_pool


def _job(model: Path, seqs: int = 4, n: int = 4, out_len: int = 8) -> dict:
    reqs = [{"rid": i, "arrival": 0.0, "prompt_len": 40 + 8 * i, "output_len": out_len}
            for i in range(n)]  # fmt: skip
    return {"model": str(model), **base.ENGINE, "policy": "chunked-512", "max_num_seqs": seqs,
            "requests": reqs}  # fmt: skip


def _run(job: dict, out: Path, name: str) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    return launch.call("driver", job, out, timeout_s=600, name=name)


def _totals(res: dict) -> tuple[int, list[int]]:
    return len(res["requests"]), sorted(len(r["token_times"]) for r in res["requests"])


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_same_config_shares_one_engine_and_serves_alike(model_dir: Path, tmp_path: Path) -> None:
    a = _run(_job(model_dir), tmp_path, "a")
    b = _run(_job(model_dir), tmp_path, "b")
    pa, pb = a["engine_pool"], b["engine_pool"]
    assert pa["pooled"] and pb["pooled"] and pa["key"] == pb["key"]
    assert pb["engine_pid"] == pa["engine_pid"] and pb["engine_reused"]
    assert pb["engine_jobs_before"] == pa["engine_jobs_before"] + 1
    assert pb["engine_started_at"] == pa["engine_started_at"]
    # the reused engine's point paid no start-up; attaching is a socket round trip
    assert b["startup"]["import_s"] == b["startup"]["engine_s"] == 0.0
    assert b["startup"]["attach_s"] < 2.0 < a["startup"]["import_s"] + a["startup"]["engine_s"]
    assert _totals(a) == _totals(b) == (4, [8, 8, 8, 8])
    # the point's own log names the engine it ran on
    assert f'"engine_pid": {pa["engine_pid"]}' in (tmp_path / "b.log").read_text()

    # a fresh process per point (the pool off) serves the same workload identically
    os.environ["EFFLAB_VLLM_POOL"] = "0"
    try:
        c = _run(_job(model_dir), tmp_path, "c")
    finally:
        del os.environ["EFFLAB_VLLM_POOL"]
    pc = c["engine_pool"]
    assert not pc["pooled"] and not pc["engine_reused"] and pc["engine_jobs_before"] == 0
    assert pc["engine_pid"] != pa["engine_pid"] and not _alive(pc["engine_pid"])
    assert _totals(c) == _totals(a)
    assert sum(it["decode_tokens"] for it in c["iterations"]) == sum(
        it["decode_tokens"] for it in b["iterations"]
    )
    assert sum(it["prefill_tokens"] for it in c["iterations"]) == sum(
        it["prefill_tokens"] for it in b["iterations"]
    )


def test_other_config_other_engine_and_killed_daemon_replaced(
    model_dir: Path, tmp_path: Path
) -> None:
    a = _run(_job(model_dir, seqs=4), tmp_path, "a")
    b = _run(_job(model_dir, seqs=2), tmp_path, "b")
    assert a["engine_pool"]["key"] != b["engine_pool"]["key"]
    assert a["engine_pool"]["engine_pid"] != b["engine_pool"]["engine_pid"]
    assert max(it["n_seqs"] for it in b["iterations"]) == 2  # its own batch limit

    os.kill(b["engine_pool"]["engine_pid"], signal.SIGKILL)
    c = _run(_job(model_dir, seqs=2), tmp_path, "c")
    assert c["engine_pool"]["engine_pid"] != b["engine_pool"]["engine_pid"]
    assert not c["engine_pool"]["engine_reused"] and _totals(c) == _totals(b)
    # the other configuration's engine was left alone
    assert _alive(a["engine_pool"]["engine_pid"])


def test_killed_client_leaves_no_job_running(model_dir: Path, tmp_path: Path) -> None:
    """A script killed mid-job (timeout, cancel, kill -9): its engine exits at once
    rather than serve on for nobody; the next point gets a fresh engine."""
    first = _run(_job(model_dir, seqs=3), tmp_path, "warm")  # the engine is up and idle
    pid = first["engine_pool"]["engine_pid"]
    client = textwrap.dedent(f"""
        import sys, json
        sys.path[:0] = {[str(Path(launch.__file__).parents[1])]!r}
        from pathlib import Path
        from vllmserve import launch
        job = json.loads(Path({str(tmp_path / "long.json")!r}).read_text())
        launch.call("driver", job, Path({str(tmp_path)!r}), 600, "long")
    """)
    long_job = _job(model_dir, seqs=3, n=3, out_len=900)  # a minute or more of decoding
    (tmp_path / "long.json").write_text(json.dumps(long_job))
    proc = subprocess.Popen([sys.executable, "-c", client], env=dict(os.environ))
    log = Path(os.environ["EFFLAB_VLLM_POOL_DIR"]) / f"{first['engine_pool']['key']}.log"
    deadline = time.monotonic() + 60
    while "job 2 started" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # inside the job
    assert proc.poll() is None, "the long job ended before it could be killed"
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the engine kept serving a killed client's job"
    assert "client went away mid-job" in log.read_text()
    again = _run(_job(model_dir, seqs=3), tmp_path, "again")
    assert again["engine_pool"]["engine_pid"] != pid and not again["engine_pool"]["engine_reused"]


def test_idle_engine_exits_by_itself(model_dir: Path, tmp_path: Path) -> None:
    os.environ["EFFLAB_VLLM_POOL_IDLE_S"] = "2"
    try:
        res = _run(_job(model_dir, seqs=5), tmp_path, "a")
    finally:
        del os.environ["EFFLAB_VLLM_POOL_IDLE_S"]
    pid, key = res["engine_pool"]["engine_pid"], res["engine_pool"]["key"]
    deadline = time.monotonic() + 20
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)
    assert not (pool.pool_dir() / f"{key}.sock").exists()  # a later point starts afresh


def test_engines_beyond_the_cap_are_evicted(model_dir: Path, tmp_path: Path) -> None:
    """EFFLAB_VLLM_POOL_MAX: a new engine first sends idle ones (least recently used) away."""
    old = _run(_job(model_dir, seqs=6), tmp_path, "old")
    os.environ["EFFLAB_VLLM_POOL_MAX"] = "1"
    try:
        new = _run(_job(model_dir, seqs=7), tmp_path, "new")
    finally:
        del os.environ["EFFLAB_VLLM_POOL_MAX"]
    deadline = time.monotonic() + 15
    while _alive(old["engine_pool"]["engine_pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(old["engine_pool"]["engine_pid"])
    assert _alive(new["engine_pool"]["engine_pid"])
    assert pool._live_keys(pool.pool_dir()) == [new["engine_pool"]["key"]]
