"""The machine's state as it bears on timing: read, never guessed.

What makes a timing noisy is mostly outside the measured program (pyperf's `system
show` checks the same things): a CPU frequency that moves (governor, turbo/boost),
SMT siblings sharing a core, no isolated cores, other load, a hypervisor that steals
time, address-space randomisation. Each reading here is a `Check` with the value as
read, a status (`ok`, `noisy`, `unknown`) and, when noisy, how to fix it. A file
that cannot be read gives "unknown" - a virtual machine hides most of /sys - never a
default. `state()` is what a run records (provenance: `machine`), `checks()` what
`efflab doctor --timing` prints. Stdlib only (the job side may call it).
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"
OK, NOISY = "ok", "noisy"
CPU_SYS = Path("/sys/devices/system/cpu")
LOAD_PER_CORE_NOISY = 0.10  # others' busy cores per core beyond which timings suffer
STEAL_NOISY = 0.02  # share of CPU time a hypervisor took from this guest


@dataclass
class Check:
    name: str
    value: Any  # as read ("unknown" when unreadable)
    status: str  # ok | noisy | unknown
    advice: str = ""  # how to fix it (noisy) or how to find out (unknown)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _read(path: Path | str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _cpuinfo() -> dict[str, str]:
    """The first processor's block of /proc/cpuinfo."""
    out: dict[str, str] = {}
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if not line.strip():
            if out:
                break
            continue
        k, _, v = line.partition(":")
        out.setdefault(k.strip(), v.strip())
    return out


def cpu_model() -> str:
    info = _cpuinfo()
    return info.get("model name") or info.get("Processor") or platform.processor() or UNKNOWN


def cpu_flags() -> list[str] | str:
    flags = _cpuinfo().get("flags") or _cpuinfo().get("Features")
    return sorted(flags.split()) if flags else UNKNOWN


def _per_cpu(rel: str) -> dict[int, str | None]:
    cpus = sorted(os.sched_getaffinity(0))
    return {c: _read(CPU_SYS / f"cpu{c}" / rel) for c in cpus}


def governor() -> Check:
    got = _per_cpu("cpufreq/scaling_governor")
    vals = {v for v in got.values() if v is not None}
    if not vals:
        return Check("cpu governor", UNKNOWN, UNKNOWN, "no cpufreq in /sys (a VM's host sets it)")
    value = ",".join(sorted(vals)) if len(vals) > 1 else vals.pop()
    if value == "performance":
        return Check("cpu governor", value, OK)
    return Check("cpu governor", value, NOISY,
                 "the clock follows load: `cpupower frequency-set -g performance` "
                 "(or `python -m pyperf system tune`)")  # fmt: skip


def turbo() -> Check:
    no_turbo = _read(CPU_SYS / "intel_pstate/no_turbo")
    if no_turbo is not None:
        on = no_turbo == "0"
    else:
        boost = _read(CPU_SYS / "cpufreq/boost")
        if boost is None:
            return Check("turbo/boost", UNKNOWN, UNKNOWN,
                         "neither intel_pstate/no_turbo nor cpufreq/boost is readable")  # fmt: skip
        on = boost == "1"
    if not on:
        return Check("turbo/boost", "off", OK)
    return Check("turbo/boost", "on", NOISY,
                 "the clock depends on temperature and on the other cores: "
                 "`echo 1 > /sys/devices/system/cpu/intel_pstate/no_turbo` "
                 "(AMD/acpi-cpufreq: `echo 0 > /sys/devices/system/cpu/cpufreq/boost`)")  # fmt: skip


def smt() -> Check:
    control = _read(CPU_SYS / "smt/control")
    active = _read(CPU_SYS / "smt/active")
    siblings = {c: v for c, v in _per_cpu("topology/thread_siblings_list").items() if v is not None}
    shared = any(("," in v or "-" in v) for v in siblings.values())
    if control is None and not siblings:
        return Check("SMT (hyper-threading)", UNKNOWN, UNKNOWN, "no smt/ nor topology/ in /sys")
    value = control or ("on" if shared else "off")
    if active == "1" or shared:
        return Check("SMT (hyper-threading)", value, NOISY,
                     "a sibling thread shares the measured core's units: "
                     "`echo off > /sys/devices/system/cpu/smt/control`, or leave the "
                     "sibling of the measured core idle")  # fmt: skip
    return Check("SMT (hyper-threading)", value, OK)


def isolated() -> Check:
    iso = _read(CPU_SYS / "isolated")
    if iso is None:
        return Check("isolated cores", UNKNOWN, UNKNOWN, "no /sys/devices/system/cpu/isolated")
    if iso:
        return Check("isolated cores", iso, OK)
    return Check("isolated cores", "none", NOISY,
                 "the kernel may run anything on the measured core: boot with "
                 "`isolcpus=N nohz_full=N rcu_nocbs=N` for the core efflab pins timings to "
                 "(efflab pins without it; isolation also keeps the kernel's own work off)")  # fmt: skip


def aslr() -> Check:
    v = _read("/proc/sys/kernel/randomize_va_space")
    if v is None:
        return Check("ASLR", UNKNOWN, UNKNOWN, "no /proc/sys/kernel/randomize_va_space")
    return Check("ASLR", {"0": "off", "1": "partial", "2": "full"}.get(v, v), OK,
                 "" if v == "0" else "address layout varies run to run (cache/alignment "
                 "effects of a few %); repetitions absorb it, as pyperf does")  # fmt: skip


def virtualization() -> Check:
    hv = "hypervisor" in (cpu_flags() if isinstance(cpu_flags(), list) else [])
    if hv:
        return Check("virtual machine", "yes", NOISY,
                     "a hypervisor schedules this machine's vCPUs: steal time and neighbours "
                     "make wall time noisy; prefer instruction counts (instrument: cachegrind)")  # fmt: skip
    if isinstance(cpu_flags(), str):
        return Check("virtual machine", UNKNOWN, UNKNOWN, "no CPU flags readable")
    return Check("virtual machine", "no", OK)


def _cpu_times() -> list[int] | None:
    parts = (_read("/proc/stat") or "").split("\n", 1)[0].split()
    if not parts or parts[0] != "cpu":
        return None
    return [int(x) for x in parts[1:9]]


def load(sample_s: float = 0.0) -> dict[str, Any]:
    """Load averages, runnable tasks, and (sample_s > 0) busy and steal shares over a
    short sample of /proc/stat."""
    out: dict[str, Any] = {"load_1m": UNKNOWN, "load_5m": UNKNOWN, "runnable": UNKNOWN}
    la = (_read("/proc/loadavg") or "").split()
    if len(la) >= 4:
        out.update(load_1m=float(la[0]), load_5m=float(la[1]))
        out["runnable"] = int(la[3].split("/")[0])
    if sample_s > 0:
        a = _cpu_times()
        time.sleep(sample_s)
        b = _cpu_times()
        if a and b:
            d = [y - x for x, y in zip(a, b, strict=True)]
            total = sum(d) or 1
            out["busy_share"] = round((d[0] + d[1] + d[2] + d[5] + d[6] + d[7]) / total, 3)
            out["steal_share"] = round(d[7] / total, 3)
            out["sample_s"] = sample_s
    return out


def load_check(sample_s: float) -> Check:
    got = load(sample_s)
    ncpu = len(os.sched_getaffinity(0))
    busy = got.get("busy_share")
    if busy is None:
        return Check("load", got, UNKNOWN, "no /proc/stat")
    # the sample itself (this process sleeping) adds nothing; the busy share is others'
    if busy > LOAD_PER_CORE_NOISY:
        return Check("load", got, NOISY,
                     f"other work keeps {busy * ncpu:.2f} of {ncpu} cores busy: measure when "
                     "the machine is idle, or let efflab pin the timing to its own core "
                     "(exclusive jobs) and count instructions where wall time stays noisy")  # fmt: skip
    return Check("load", got, OK)


def steal_check(got: dict[str, Any]) -> Check | None:
    st = got.get("steal_share")
    if st is None or st == 0:
        return None
    return Check("steal time", st, NOISY if st > STEAL_NOISY else OK,
                 "the hypervisor ran other guests on this machine's CPUs")  # fmt: skip


# -- hardware performance counters -------------------------------------------------

_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "s390x": 331}


def counters_readable() -> tuple[bool | str, str]:
    """Can this process count its own instructions? (True | False | "unknown", why).

    A real attempt: perf_event_open(2) of PERF_COUNT_HW_INSTRUCTIONS for this process,
    user space only, enabled, read after a little work. A VM without a virtual PMU
    refuses (ENOENT/EOPNOTSUPP) whatever perf_event_paranoid says."""
    nr = _PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        return UNKNOWN, f"no perf_event_open number known for {platform.machine()}"
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as exc:
        return UNKNOWN, f"no libc: {exc}"
    attr = (ctypes.c_uint8 * 128)()
    ctypes.memmove(attr, (ctypes.c_uint32 * 2)(0, 128), 8)  # type HARDWARE, size
    ctypes.memmove(ctypes.byref(attr, 8), (ctypes.c_uint64 * 1)(1), 8)  # INSTRUCTIONS
    # flags at offset 40: exclude_kernel (bit 5) | exclude_hv (bit 6); enabled
    ctypes.memmove(ctypes.byref(attr, 40), (ctypes.c_uint64 * 1)((1 << 5) | (1 << 6)), 8)
    fd = libc.syscall(nr, attr, 0, -1, -1, 0)
    if fd < 0:
        err = ctypes.get_errno()
        return False, f"perf_event_open: {os.strerror(err)} (errno {err})"
    try:
        sum(range(10000))
        raw = os.read(fd, 8)
        n = int.from_bytes(raw, "little") if len(raw) == 8 else 0
    finally:
        os.close(fd)
    if n <= 0:
        return False, "perf_event_open succeeded but counted nothing"
    return True, f"counted {n} instructions of a small loop"


def counters() -> Check:
    paranoid = _read("/proc/sys/kernel/perf_event_paranoid")
    ok, why = counters_readable()
    tool = shutil.which("perf")
    value = {"readable": ok, "perf_event_paranoid": paranoid or UNKNOWN, "perf": tool,
             "attempt": why}  # fmt: skip
    if ok is True:
        return Check("hardware counters", value, OK,
                     "" if tool else "install `perf` (Debian: linux-perf) for instrument: perf")  # fmt: skip
    if ok is False:
        fix = (
            "`sysctl kernel.perf_event_paranoid=1`"
            if paranoid and paranoid.lstrip("-").isdigit() and int(paranoid) > 2
            else "no PMU here (a VM without a virtual PMU): instrument: cachegrind counts "
            "instructions in software instead"
        )
        return Check("hardware counters", value, NOISY, f"instructions cannot be counted: {fix}")
    return Check("hardware counters", value, UNKNOWN, why)


def valgrind() -> Check:
    exe = shutil.which("valgrind")
    if not exe:
        return Check("valgrind (cachegrind)", None, NOISY,
                     "no software instruction counts: `apt-get install valgrind` (tools/setup.sh)")  # fmt: skip
    try:
        v = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20)
        ver = v.stdout.strip() or UNKNOWN
    except (OSError, subprocess.SubprocessError):
        ver = UNKNOWN
    return Check("valgrind (cachegrind)", ver, OK)


def affinity() -> Check:
    cpus = sorted(os.sched_getaffinity(0))
    ncpu = os.cpu_count() or len(cpus)
    value = {"allowed": cpus, "online": ncpu}
    if len(cpus) < 2:
        return Check("cores to pin", value, NOISY,
                     "one core: an exclusive timing cannot get a core of its own "
                     "(efflab pins only with >= 2 allowed cores)")  # fmt: skip
    return Check("cores to pin", value, OK)


def checks(sample_s: float = 1.0) -> list[Check]:
    """Everything `doctor --timing` reports, in its order."""
    out = [
        Check("cpu model", cpu_model(), OK),
        Check("kernel", platform.release() or UNKNOWN, OK),
        virtualization(),
        governor(),
        turbo(),
        smt(),
        isolated(),
        affinity(),
        aslr(),
        counters(),
        valgrind(),
    ]
    lc = load_check(sample_s)
    out.append(lc)
    st = steal_check(lc.value if isinstance(lc.value, dict) else {})
    if st is not None:
        out.append(st)
    return out


def state(sample_s: float = 0.0) -> dict[str, Any]:
    """What a run records (provenance `machine`): values as read, "unknown" where not."""
    gov, tur, sm, iso = governor(), turbo(), smt(), isolated()
    ok, why = counters_readable()
    flags = cpu_flags()
    return {
        "cpu_model": cpu_model(),
        "cpu_flags": flags,
        "virtual": "hypervisor" in flags if isinstance(flags, list) else UNKNOWN,
        "kernel": platform.release() or UNKNOWN,
        "governor": gov.value,
        "turbo": tur.value,
        "smt": sm.value,
        "isolated": iso.value,
        "allowed_cpus": sorted(os.sched_getaffinity(0)),
        "perf_event_paranoid": _read("/proc/sys/kernel/perf_event_paranoid") or UNKNOWN,
        "counters_readable": ok,
        "load": load(sample_s),
    }


def noisy_summary(st: dict[str, Any]) -> list[str]:
    """The noise sources a recorded `state()` shows, as short phrases (for reports)."""
    out = []
    if st.get("virtual") is True:
        out.append("virtual machine")
    if st.get("governor") not in (None, UNKNOWN, "performance"):
        out.append(f"governor {st['governor']}")
    if st.get("turbo") == "on":
        out.append("turbo on")
    if st.get("smt") not in (None, UNKNOWN, "off", "notsupported", "forceoff"):
        out.append(f"SMT {st['smt']}")
    ld = st.get("load") or {}
    if isinstance(ld.get("load_1m"), float) and ld["load_1m"] > 0.5:
        out.append(f"load {ld['load_1m']:.2f}")
    return out


_RANGE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def parse_cpu_list(text: str) -> list[int]:
    """'0-2,5' -> [0, 1, 2, 5] (the kernel's list format); ValueError when malformed."""
    text = text.strip()
    if not _RANGE.match(text):
        raise ValueError(f"not a CPU list: {text!r}")
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return sorted(set(out))
