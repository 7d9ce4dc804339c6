"""Energy: Linux RAPL counters where readable, otherwise an explicitly labelled estimate.

The estimate model lives here and only here:
    E = P_IDLE_W * wall_seconds + P_CORE_W * cpu_seconds
P_IDLE_W is the share of package idle power attributed to one running job, P_CORE_W the
extra power of one fully busy core. The defaults are round figures for a server-class
x86 core; they make results comparable between runs on one machine, not absolute
watts. The method string says which model produced a number, so an estimate is never
shown as a measurement.
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from pathlib import Path

P_IDLE_W = 5.0
P_CORE_W = 15.0
MODEL = "cpu-linear-v1"
ESTIMATED = f"estimated:{MODEL}"
MEASURED = "measured:rapl"
MODEL_PARAMS = {
    "P_idle_W": P_IDLE_W,
    "P_core_W": P_CORE_W,
    "formula": "E = P_idle_W*wall_s + P_core_W*cpu_s",
}

RAPL_ROOT = Path("/sys/class/powercap")


def _rapl_files() -> list[Path]:
    """Package-level RAPL energy counters that this process can actually read."""
    files = []
    for f in sorted(RAPL_ROOT.glob("intel-rapl:*/energy_uj")):
        if f.parent.name.count(":") != 1:
            continue
        try:
            int(f.read_text())
            files.append(f)
        except (OSError, ValueError):
            return []
    return files


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def estimate_joules(wall_s: float, cpu_s: float) -> float:
    return P_IDLE_W * wall_s + P_CORE_W * cpu_s


@dataclass
class Measurement:
    joules: float = float("nan")
    wall_s: float = 0.0
    cpu_s: float = 0.0
    method: str = ESTIMATED


class _Span:
    def __init__(self, meter: EnergyMeter):
        self.meter = meter
        self.m = Measurement(method=meter.method)

    def __enter__(self) -> Measurement:
        self._t0 = time.perf_counter()
        self._c0 = _cpu_seconds()
        self._e0 = self.meter.read_rapl()
        return self.m

    def __exit__(self, *exc) -> None:
        self.m.wall_s = time.perf_counter() - self._t0
        self.m.cpu_s = _cpu_seconds() - self._c0
        if self._e0 is not None:
            e1 = self.meter.read_rapl()
            self.m.joules = (
                (e1 - self._e0) / 1e6 if e1 is not None and e1 >= self._e0 else float("nan")
            )
        if self._e0 is None or self.m.joules != self.m.joules:
            self.m.method = ESTIMATED
            self.m.joules = estimate_joules(self.m.wall_s, self.m.cpu_s)
        self.meter.spans.append(self.m)


class EnergyMeter:
    """`with meter.measure() as m: ...` then m.joules / m.method."""

    def __init__(self, allow_rapl: bool = True):
        self._files = _rapl_files() if allow_rapl else []
        self.method = MEASURED if self._files else ESTIMATED
        self.spans: list[Measurement] = []

    def read_rapl(self) -> int | None:
        if not self._files:
            return None
        try:
            return sum(int(f.read_text()) for f in self._files)
        except (OSError, ValueError):
            return None

    def measure(self) -> _Span:
        return _Span(self)
