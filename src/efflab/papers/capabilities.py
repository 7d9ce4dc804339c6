"""What this machine has that a claim may require, and what a requirement lacks.

A claim such as "bf16 raises training throughput" holds only where the CPU executes
bf16 natively; on an AVX2-only host the measurement is real but says nothing of the
paper. A spec states the precondition (`requires:` on a claim or on an experiment);
the verdict on a machine without it is "not applicable", naming what is missing.

Where each capability is read (Linux):

    cpu_features  the `flags` line of /proc/cpuinfo (the kernel's names: avx512_bf16,
                  amx_bf16, avx512_vnni, avx_vnni, ...)
    min_cores     os.sched_getaffinity(0): the cores this process may run on (a
                  container's or taskset's limit), not os.cpu_count()'s total
    accelerator   nvidia: /proc/driver/nvidia/gpus/ (one folder per GPU, written by
                  the NVIDIA kernel driver; read by efflab.core.runtime_identity, which
                  also puts the CPU class into every key); amd: /dev/kfd (ROCm)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from efflab.core import cpuinfo, runtime_identity

# the flags a report lists (others stay in /proc/cpuinfo)
RELEVANT = (
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
)
ACCELERATORS = {"nvidia": "/proc/driver/nvidia/gpus", "amd": "/dev/kfd"}
SOURCES = {
    "cpu_features": "/proc/cpuinfo flags",
    "min_cores": "os.sched_getaffinity",
    "accelerator": "/proc/driver/nvidia/gpus, /dev/kfd",
}


@dataclass(frozen=True)
class Machine:
    """The capabilities of one machine that claims may require."""

    cpu_model: str
    flags: frozenset[str]
    cores: int  # usable by this process
    accelerators: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """For reports: the model, usable cores, relevant flags present and absent."""
        return {
            "cpu_model": self.cpu_model,
            "usable_cores": self.cores,
            "cpu_features": [f for f in RELEVANT if f in self.flags],
            "cpu_features_absent": [f for f in RELEVANT if f not in self.flags],
            "accelerators": list(self.accelerators),
            "sources": SOURCES,
        }


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first processor in a /proc/cpuinfo text."""
    info = cpuinfo.parse(text)
    return info.model, info.flags


@cache
def this_machine() -> Machine:
    model, flags = parse_cpuinfo(cpuinfo.text())
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    accel = []
    if runtime_identity.gpu_models():  # the device class's own reading of the driver
        accel.append("nvidia")
    if Path(ACCELERATORS["amd"]).exists():
        accel.append("amd")
    return Machine(model, flags, cores, tuple(accel))


@dataclass(frozen=True)
class Requires:
    """What a claim or experiment needs of the machine (all of it)."""

    cpu_features: tuple[str, ...] = ()
    min_cores: int | None = None
    accelerator: str | None = None
    path: str = "$"

    def missing(self, m: Machine) -> list[str]:
        """What `m` lacks, each naming where it was read; empty when it has it all."""
        out = [
            f"CPU feature {f} (not in {SOURCES['cpu_features']})"
            for f in self.cpu_features
            if f not in m.flags
        ]
        if self.min_cores is not None and m.cores < self.min_cores:
            out.append(f"{self.min_cores} usable cores (os.sched_getaffinity: {m.cores})")
        if self.accelerator is not None and self.accelerator not in m.accelerators:
            out.append(f"a {self.accelerator} accelerator (no {ACCELERATORS[self.accelerator]})")
        return out

    def render(self) -> str:
        parts = [f"CPU features {', '.join(self.cpu_features)}"] if self.cpu_features else []
        parts += [f"{self.min_cores}+ cores"] if self.min_cores else []
        parts += [f"a {self.accelerator} accelerator"] if self.accelerator else []
        return "; ".join(parts)


def parse_requires(raw: dict[str, Any] | None, path: str) -> Requires | None:
    if not raw:
        return None
    return Requires(
        tuple(raw.get("cpu_features") or ()), raw.get("min_cores"), raw.get("accelerator"), path
    )
