"""Peak resident memory above a baseline, with the kernel's high-water mark reset.

Why: a forked job inherits its parent's VmHWM, and ru_maxrss cannot be reset, so a
comparison of training variants would otherwise see the larger of the parent's and
its own peak. Writing 5 to /proc/self/clear_refs resets VmHWM to the current RSS.
"""

from __future__ import annotations

import resource


def status_kb(field: str) -> int | None:
    """One `Vm*` field of /proc/self/status in kB (None off Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if the kernel refuses."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_kb() -> tuple[int, str]:
    """Peak RSS in kB and how it was read."""
    hwm = status_kb("VmHWM")
    if hwm is not None:
        return hwm, "proc-VmHWM"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "getrusage-ru_maxrss"


class PeakAbove:
    """`with PeakAbove() as m: ...` then m.mb = peak RSS above the RSS at entry."""

    def __enter__(self) -> PeakAbove:
        self.reset = reset_peak()
        self.base_kb = status_kb("VmRSS") or peak_kb()[0]
        self.mb = 0.0
        self.method = ""
        return self

    def __exit__(self, *exc: object) -> None:
        kb, self.method = peak_kb()
        if not self.reset:
            self.method += "-not-reset"
        self.mb = max(0, kb - self.base_kb) / 1024.0
