"""MLPerf LoadGen harness: the CPU engine as system under test (Server / Offline).

Why: LoadGen is the reference load generator for MLPerf Inference; driving the engine
through it gives scenario-conformant TTFT/TPOT numbers and a validity verdict that can
be cross-checked against the engine's own timestamps. The engine runs in its own
thread; IssueQuery only enqueues. First tokens are reported with FirstTokenComplete,
completions with QuerySamplesComplete carrying n_tokens (use_token_latencies on).
"""

from __future__ import annotations

import array
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg

from .engine import Engine
from .mlperf_logs import parse_detail, parse_summary  # noqa: F401  (re-exported)
from .scheduler import Request

SCENARIOS = {"Server": lg.TestScenario.Server, "Offline": lg.TestScenario.Offline}


@dataclass
class LoadGenConfig:
    """Scenario settings; latency bounds are the Server-scenario token constraints."""

    scenario: str = "Server"
    target_qps: float = 8.0
    min_queries: int = 32
    min_duration_ms: int = 0
    ttft_ms: float = 2000.0
    tpot_ms: float = 200.0
    trace: bool = False
    seed: int = 0


class EngineSUT:
    """Adapter between LoadGen callbacks and the engine's request queue."""

    def __init__(self, engine: Engine, samples: list[tuple[int, int]]) -> None:
        self.engine = engine
        self.samples = samples  # sample index -> (prompt_len, output_len)
        self.inbox: queue.Queue[Request | None] = queue.Queue()
        self.stop = threading.Event()
        self.t0 = time.perf_counter()
        self.requests: list[Request] = []
        self._ids: dict[int, int] = {}  # rid -> LoadGen query id
        self._buf = array.array("i", [0])  # token ids are not checked (performance mode)
        engine.on_first_token = self._first
        engine.on_finish = self._done

    def _respond(self, req: Request, n_tokens: int | None) -> lg.QuerySampleResponse:
        ptr, _ = self._buf.buffer_info()
        size = self._buf.itemsize
        if n_tokens is None:
            return lg.QuerySampleResponse(self._ids[req.rid], ptr, size)
        return lg.QuerySampleResponse(self._ids[req.rid], ptr, size, n_tokens)

    def _first(self, req: Request, now: float) -> None:
        lg.FirstTokenComplete([self._respond(req, None)])

    def _done(self, req: Request, now: float) -> None:
        lg.QuerySamplesComplete([self._respond(req, req.generated)])

    def issue(self, query_samples: list[Any]) -> None:
        now = time.perf_counter() - self.t0
        for qs in query_samples:
            p, o = self.samples[qs.index]
            req = Request(rid=len(self.requests), arrival=now, prompt_len=p, output_len=o)
            self._ids[req.rid] = qs.id
            self.requests.append(req)
            self.inbox.put(req)

    def flush(self) -> None:
        pass

    def serve(self) -> None:
        self.engine.serve_queue(self.inbox, self.t0, self.stop)


def run_loadgen(
    engine: Engine, samples: list[tuple[int, int]], cfg: LoadGenConfig, log_dir: Path
) -> EngineSUT:
    """Run one LoadGen test; logs land in `log_dir` (created first: LoadGen aborts
    when the folder is missing)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    ts = lg.TestSettings()
    ts.scenario = SCENARIOS[cfg.scenario]
    ts.mode = lg.TestMode.PerformanceOnly
    ts.use_token_latencies = True
    ts.min_query_count = cfg.min_queries
    ts.min_duration_ms = cfg.min_duration_ms
    ts.server_target_qps = cfg.target_qps
    ts.offline_expected_qps = cfg.target_qps
    ts.ttft_latency = int(cfg.ttft_ms * 1e6)
    ts.tpot_latency = int(cfg.tpot_ms * 1e6)
    ts.server_target_latency_ns = int((cfg.ttft_ms + 64 * cfg.tpot_ms) * 1e6)
    ts.performance_sample_count_override = len(samples)
    ts.qsl_rng_seed = ts.sample_index_rng_seed = ts.schedule_rng_seed = cfg.seed + 1
    out = lg.LogOutputSettings()
    out.outdir = str(log_dir)
    out.copy_summary_to_stdout = False
    ls = lg.LogSettings()
    ls.log_output = out
    ls.enable_trace = cfg.trace
    sut_obj = EngineSUT(engine, samples)
    worker = threading.Thread(target=sut_obj.serve, daemon=True)
    sut = lg.ConstructSUT(sut_obj.issue, sut_obj.flush)
    qsl = lg.ConstructQSL(len(samples), len(samples), lambda s: None, lambda s: None)
    # LoadGen's issue thread needs the GIL to enter IssueQuery; the default 5 ms switch
    # interval would add up to that much to every TTFT while the engine thread runs.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    sut_obj.t0 = time.perf_counter()
    worker.start()
    try:
        lg.StartTestWithLogSettings(sut, qsl, ts, ls)
    finally:
        sut_obj.stop.set()
        worker.join()
        sys.setswitchinterval(switch)
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    return sut_obj
