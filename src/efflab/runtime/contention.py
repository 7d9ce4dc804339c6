"""Was the machine contended while an invocation ran? Measured on the job side.

A timing taken while other work competed for the invocation's cores is suspect. The
job side samples the machine's busy CPU time (/proc/stat) before and after the
invocation; what the machine spent beyond the invocation's own CPU time, per second
of its wall time, is `others_cores`. The invocation is *contended* when that exceeds
the cores it left free (machine cores - the cores it was given) by more than
SLACK_CORES: other work then had to share the invocation's own cores. A pinned
invocation (efflab.runtime.pinning) is judged on its own cores instead: what other work
ran on them (per-CPU /proc/stat lines, less its own CPU time) beyond SLACK_CORES. The rule is a
pure function of the stored numbers, so a record can be re-judged later. Stdlib only:
this runs in the job process.
"""

from __future__ import annotations

import os
from typing import Any

SLACK_CORES = 0.25  # Snakemake's own bookkeeping and the efflab parent fit in this


def busy_seconds(cpus: tuple[int, ...] | None = None) -> float | None:
    """CPU seconds the whole machine (or only `cpus`) has been busy since boot (None:
    no /proc/stat, or a CPU missing from it)."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().split("\n", (max(cpus) + 2) if cpus else 1)
    except OSError:
        return None
    want = {"cpu"} if cpus is None else {f"cpu{c}" for c in cpus}
    busy, seen = 0, set()
    for line in lines:
        parts = line.split()
        if not parts or parts[0] not in want:
            continue
        v = [int(x) for x in parts[1:9]]  # user nice system idle iowait irq softirq steal
        busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
        seen.add(parts[0])
    if seen != want:
        return None
    return busy / os.sysconf("SC_CLK_TCK")


def measure(
    busy0: float | None,
    wall_s: float,
    own_cpu_s: float,
    cpus_given: float,
    pinned: tuple[int, ...] | None = None,
    busy0_pinned: float | None = None,
) -> dict[str, Any]:
    """The contention block of outputs.json for one finished invocation (`pinned`: the
    cores it was pinned to, `busy0_pinned` their busy seconds at its start)."""
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
    if pinned is not None:
        b1 = busy_seconds(pinned)
        on = None
        if busy0_pinned is not None and b1 is not None and wall_s > 0:
            on = round(max(0.0, (b1 - busy0_pinned - own_cpu_s) / wall_s), 3)
        out.update(pinned_cpus=list(pinned), others_on_pinned=on)
    out["contended"] = is_contended(out)
    return out


def is_contended(c: dict[str, Any] | None) -> bool | None:
    """True when other work needed more than the cores the invocation left free."""
    if not c:
        return None
    if c.get("pinned_cpus"):  # judged on its own cores only
        on = c.get("others_on_pinned")
        return None if on is None else float(on) > SLACK_CORES
    if c.get("others_cores") is None:
        return None
    free = max(0.0, float(c["ncpu"]) - float(c["cpus_given"]))
    return float(c["others_cores"]) > free + SLACK_CORES
