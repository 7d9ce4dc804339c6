"""MLPerf LoadGen (mlcommons-loadgen) driving vLLM's engine as the system under test.

Runs under vLLM's interpreter: `python -m vllmserve.loadgen_driver JOB.json RESULT.json`.
LoadGen runs its test on the main thread and calls IssueQuery from its own thread; the
engine is stepped by one worker thread only (vLLM's engine is not thread-safe), which
takes new queries from a queue between iterations. First tokens are reported with
FirstTokenComplete and completions with QuerySamplesComplete carrying n_tokens
(use_token_latencies), so LoadGen's summary has TTFT and TPOT percentiles for the
Server scenario and tokens/s for Offline. LoadGen's own logs land in the job's log dir.
"""

from __future__ import annotations

import array
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .driver import VllmEngine


def run(job: dict[str, Any], eng: VllmEngine | None = None) -> dict[str, Any]:
    """One LoadGen test; on `eng` (a pooled engine, job begun) or a new one."""
    eng = eng or VllmEngine(job)  # before LoadGen starts: start-up is not part of the test
    eng.begin_job()
    import mlperf_loadgen as lg

    samples: list[tuple[int, int]] = [tuple(s) for s in job["samples"]]  # type: ignore[misc]
    inbox: queue.Queue[tuple[int, int]] = queue.Queue()  # (LoadGen query id, sample index)
    stop = threading.Event()
    buf = array.array("i", [0])  # token ids are not checked (performance mode)
    ptr, size = buf.buffer_info()[0], buf.itemsize
    state: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()

    def issue(query_samples: list[Any]) -> None:
        for qs in query_samples:
            inbox.put((qs.id, qs.index))

    def serve() -> None:
        n = 0
        while not stop.is_set() or eng.busy() or not inbox.empty():
            while True:
                try:
                    qid, idx = inbox.get_nowait()
                except queue.Empty:
                    break
                rid = f"q{n}"
                p, o = samples[idx]
                state[rid] = {"qid": qid, "arrival": time.perf_counter() - start,
                              "prompt_len": p, "output_len": o, "token_times": [], "finish": None}  # fmt: skip
                eng.add(rid, idx, p, o, time.time())
                n += 1
            if not eng.busy():
                time.sleep(0.0005)
                continue
            end, outs = eng.step(start)
            for out in outs:
                st = state.get(eng.local_id(out.request_id))
                if st is None:
                    continue
                new = sum(len(c.token_ids) for c in out.outputs)
                if new and not st["token_times"]:
                    lg.FirstTokenComplete([lg.QuerySampleResponse(st["qid"], ptr, size)])
                st["token_times"].extend([end] * new)
                if out.finished:
                    st["finish"] = end
                    n_tok = len(st["token_times"])
                    lg.QuerySamplesComplete([lg.QuerySampleResponse(st["qid"], ptr, size, n_tok)])

    log_dir = Path(job["log_dir"])
    log_dir.mkdir(parents=True, exist_ok=True)  # LoadGen aborts when it is missing
    ts = lg.TestSettings()
    ts.scenario = {"Server": lg.TestScenario.Server, "Offline": lg.TestScenario.Offline}[
        job["scenario"]
    ]
    ts.mode = lg.TestMode.PerformanceOnly
    ts.use_token_latencies = True
    ts.min_query_count = int(job["min_queries"])
    ts.max_query_count = int(job["min_queries"])
    ts.min_duration_ms = int(job["min_duration_ms"])
    ts.server_target_qps = float(job["target_qps"])
    ts.offline_expected_qps = float(job["target_qps"])
    ts.ttft_latency = int(job["ttft_ms"] * 1e6)
    ts.tpot_latency = int(job["tpot_ms"] * 1e6)
    ts.performance_sample_count_override = len(samples)
    ts.qsl_rng_seed = ts.sample_index_rng_seed = ts.schedule_rng_seed = int(job.get("seed", 0)) + 1
    logs = lg.LogOutputSettings()
    logs.outdir = str(log_dir)
    logs.copy_summary_to_stdout = False
    ls = lg.LogSettings()
    ls.log_output = logs
    ls.enable_trace = False
    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(len(samples), len(samples), lambda s: None, lambda s: None)
    worker = threading.Thread(target=serve, daemon=True)
    # LoadGen's issue thread needs the GIL to enter IssueQuery; the default 5 ms switch
    # interval would add up to that much to every TTFT while the engine thread runs
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    worker.start()
    try:
        lg.StartTestWithLogSettings(sut, qsl, ts, ls)
    finally:
        stop.set()
        worker.join()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
        sys.setswitchinterval(switch)  # a pooled engine's next job gets the default back
    return {**eng.report(), "requests": list(state.values())}


def main(argv: list[str]) -> int:
    result = run(json.loads(Path(argv[0]).read_text()))
    tmp = Path(argv[1]).with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
