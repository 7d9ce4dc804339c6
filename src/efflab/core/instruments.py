"""What an instrument request means before anything runs: the tools, the metrics each
adds (declared noiseless where the count repeats exactly), and `auto` resolved on
this machine. The plan needs this (metrics, keys); running a script under a tool is
`efflab.runtime.instrument`. Stdlib only.
"""

from __future__ import annotations

import shutil
from typing import Any

TOOLS = ("perf", "cachegrind")
# counts repeat to ~1e-5 (hash-dependent dict probes of differing strings, time
# formatting), not to the instruction: changes within TOLERANCE are that jitter
TOLERANCE = 0.001
_COUNT = {"unit": "1", "better": "lower", "noiseless": True, "tolerance": TOLERANCE}
METRICS: dict[str, dict[str, dict[str, Any]]] = {
    "perf": {
        "instructions": dict(_COUNT, unit="instructions"),
        # cycles follow the clock and the caches: a noisy metric, judged as timings are
        "cycles": {"unit": "cycles", "better": "lower"},
    },
    "cachegrind": {
        "instructions": dict(_COUNT, unit="instructions"),
        "d1_misses": dict(_COUNT, unit="misses"),
        "ll_misses": dict(_COUNT, unit="misses"),
    },
}


def resolve(tool: str) -> str:
    """`auto` -> perf where this machine's counters are readable, else cachegrind."""
    if tool != "auto":
        return tool
    from efflab.core.machine import counters_readable

    return "perf" if counters_readable()[0] is True and shutil.which("perf") else "cachegrind"


def declared(tool: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """(the resolved tool, the metrics its counts add), fresh copies."""
    t = resolve(tool)
    return t, {k: dict(v) for k, v in METRICS[t].items()}
