"""Run real MLPerf LoadGen against a trivial SUT and keep its logs (a test helper).

    python loadgen_run.py SCENARIO OUTDIR MIN_DURATION_MS LATENCY_S

The SUT answers each sample after LATENCY_S; with a 10 ms Server latency bound and a
short run, LoadGen itself judges Server and MultiStream runs INVALID (early stopping
cannot be met with so few queries), which is what the invalid-run tests need.
"""

import os
import sys
import time

import mlperf_loadgen as lg

scenario, out, min_dur, lat = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
os.makedirs(out, exist_ok=True)


def issue(queries):
    responses = []
    for q in queries:
        time.sleep(lat)
        responses.append(lg.QuerySampleResponse(q.id, 0, 0))
    lg.QuerySamplesComplete(responses)


sut = lg.ConstructSUT(issue, lambda: None)
qsl = lg.ConstructQSL(64, 64, lambda s: None, lambda s: None)
ts = lg.TestSettings()
ts.scenario = getattr(lg.TestScenario, scenario)
ts.mode = lg.TestMode.PerformanceOnly
ts.min_duration_ms = min_dur
ts.min_query_count = 32
ts.server_target_qps = 50
ts.server_target_latency_ns = 10_000_000
ts.single_stream_expected_latency_ns = int(lat * 1e9)
ts.multi_stream_expected_latency_ns = int(lat * 1e9 * 8)
ts.offline_expected_qps = 100
log = lg.LogSettings()
log.log_output.outdir = out
log.log_output.copy_summary_to_stdout = False
lg.StartTestWithLogSettings(sut, qsl, ts, log)
lg.DestroyQSL(qsl)
lg.DestroySUT(sut)
os.remove(os.path.join(out, "mlperf_log_trace.json"))
