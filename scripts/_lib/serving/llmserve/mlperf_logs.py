"""LoadGen's log files read back (summary `key : value` lines, detail `:::MLLOG` JSON).

A module of its own without LoadGen or torch, so that any harness (the home-made
engine's, vLLM's) parses its logs in the script's process with nothing heavy loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any


def parse_summary(path: Path) -> dict[str, Any]:
    """Key: value lines of mlperf_log_summary.txt (numbers converted)."""
    out: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*([^:=]+?)\s*:\s*(.+?)\s*$", line)
        if not m:
            continue
        key, val = m.group(1), m.group(2)
        try:
            out[key] = float(val)
        except ValueError:
            out[key] = val
    return out


def parse_detail(path: Path) -> dict[str, Any]:
    """`:::MLLOG {json}` records of mlperf_log_detail.txt as {key: value}."""
    out: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if ":::MLLOG" not in line:
            continue
        rec = json.loads(line.split(":::MLLOG", 1)[1])
        out[rec.get("key")] = rec.get("value")
    return out


def _ms(detail: dict[str, Any], key: str) -> float:
    v = detail.get(key)
    return float(v) / 1e6 if v is not None else float("nan")


def loadgen_metrics(detail: dict[str, Any]) -> dict[str, float]:
    """The family's metrics from a parsed detail log: token latencies (ms), rates and
    the validity verdict. Metrics the scenario does not report (Offline has no token
    latencies) are left out, never NaN; `perf_constraints_met` only where LoadGen says."""
    pfx, tp = "result_first_token_", "result_time_per_output_token_"
    out = {
        "ttft_p50_ms": _ms(detail, f"{pfx}50.00_percentile_latency_ns"),
        "ttft_p90_ms": _ms(detail, f"{pfx}90.00_percentile_latency_ns"),
        "ttft_p99_ms": _ms(detail, f"{pfx}99.00_percentile_latency_ns"),
        "tpot_p50_ms": _ms(detail, f"{tp}50.00_percentile_ns"),
        "tpot_p90_ms": _ms(detail, f"{tp}90.00_percentile_ns"),
        "tpot_p99_ms": _ms(detail, f"{tp}99.00_percentile_ns"),
        "latency_p50_ms": _ms(detail, "result_50.00_percentile_latency_ns"),
        "latency_p99_ms": _ms(detail, "result_99.00_percentile_latency_ns"),
        "samples_per_s": float(
            detail.get("result_completed_samples_per_sec")
            or detail.get("result_samples_per_second")
            or "nan"
        ),
        "tokens_per_s": float(
            detail.get("result_completed_tokens_per_second")
            or detail.get("result_tokens_per_second")
            or "nan"
        ),
        "result_valid": 1.0 if detail.get("result_validity") == "VALID" else 0.0,
    }
    if "result_perf_constraints_met" in detail:
        out["perf_constraints_met"] = 1.0 if detail["result_perf_constraints_met"] else 0.0
    return {k: v for k, v in out.items() if v == v}
