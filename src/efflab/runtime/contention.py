"""Was the machine contended while an invocation ran? Measured on the job side.

A timing taken while other work competed for the invocation's cores is suspect. The
job side samples the machine's busy CPU time (/proc/stat) before and after the
invocation; what the machine spent beyond the invocation's own CPU time, per second
of its wall time, is `others_cores`. The invocation is *contended* when that exceeds
the cores it left free (machine cores - the cores it was given) by more than
SLACK_CORES: other work then had to share the invocation's own cores. The rule is a
pure function of the stored numbers, so a record can be re-judged later. Stdlib only:
this runs in the job process.
"""

from __future__ import annotations

import os
from typing import Any

SLACK_CORES = 0.25  # Snakemake's own bookkeeping and the efflab parent fit in this


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (None: no /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
    except OSError:
        return None
    if not parts or parts[0] != "cpu":
        return None
    v = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
    return busy / os.sysconf("SC_CLK_TCK")


def measure(
    busy0: float | None, wall_s: float, own_cpu_s: float, cpus_given: float
) -> dict[str, Any]:
    """The contention block of outputs.json for one finished invocation."""
    busy1 = busy_seconds()
    ncpu = os.cpu_count() or 1
    others = None
    if busy0 is not None and busy1 is not None and wall_s > 0:
        others = max(0.0, (busy1 - busy0 - own_cpu_s) / wall_s)
    out = {
        "others_cores": None if others is None else round(others, 3),
        "ncpu": ncpu,
        "cpus_given": cpus_given,
        "load_1m": round(os.getloadavg()[0], 2),
    }
    out["contended"] = is_contended(out)
    return out


def is_contended(c: dict[str, Any] | None) -> bool | None:
    """True when other work needed more than the cores the invocation left free."""
    if not c or c.get("others_cores") is None:
        return None
    free = max(0.0, float(c["ncpu"]) - float(c["cpus_given"]))
    return float(c["others_cores"]) > free + SLACK_CORES
