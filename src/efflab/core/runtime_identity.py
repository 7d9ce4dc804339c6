"""What an invocation's key knows of where it runs: runtime kind, image, device class.

A point measured on the host and then asked for under docker (or on a GPU) is
another measurement, so the runtime's identity is one component of every key
(`efflab.plan.planner`). It lives in core because the planner (below the runtime
layer) hashes it; the runtimes (`efflab.runtime.base`) produce it. Pure stdlib and
cheap (a few small /proc reads, cached): the job process may import it.

The device class is deliberately coarse — `cpu`, `cpu-avx2`, `cpu-avx512`, plus
`+gpu:<model>` per distinct accelerator model — so two machines of one class share
keys (and `results import` can merge them) while a different class never does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from efflab.core import cpuinfo

DEVICE_ENV = "EFFLAB_DEVICE_CLASS"  # overrides detection (a cluster node of known class)


@dataclass(frozen=True)
class RuntimeIdentity:
    """The part of a runtime that changes what a script measures."""

    kind: str  # the registered runtime name: host, docker, ...
    device: str  # cpu / cpu-avx2 / cpu-avx512, with +gpu:<model> per accelerator model
    image: str | None = None  # the base image a container runtime builds env images on

    def key_part(self) -> dict[str, Any]:
        """What enters the invocation key (canonical JSON of this dict)."""
        return {"kind": self.kind, "device": self.device, "image": self.image}

    def to_json(self) -> dict[str, Any]:
        return self.key_part()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RuntimeIdentity:
        return cls(kind=str(data["kind"]), device=str(data["device"]), image=data.get("image"))

    def __str__(self) -> str:
        return f"{self.kind} on {self.device}" + (f" (image {self.image})" if self.image else "")


def cpu_class(text: str) -> str:
    """`cpu-avx512` / `cpu-avx2` / `cpu` from /proc/cpuinfo's flags (text given)."""
    flags = cpuinfo.parse(text).flags
    if "avx512f" in flags:
        return "cpu-avx512"
    if "avx2" in flags:
        return "cpu-avx2"
    return "cpu"


def gpu_models(root: Path = Path("/proc/driver/nvidia/gpus")) -> list[str]:
    """Distinct NVIDIA GPU models the driver lists (no subprocess: nvidia-smi takes
    a fraction of a second, this a few file reads)."""
    models: set[str] = set()
    try:
        entries = list(root.iterdir())
    except OSError:
        return []
    for gpu in entries:
        try:
            text = (gpu / "information").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("Model:"):
                models.add(line.split(":", 1)[1].strip().replace(" ", "-"))
    return sorted(models)


@cache
def device_class() -> str:
    """This machine's device class (EFFLAB_DEVICE_CLASS overrides it)."""
    forced = os.environ.get(DEVICE_ENV, "").strip()
    if forced:
        return forced
    cpu = cpu_class(cpuinfo.text())
    return "+".join([cpu, *(f"gpu:{m}" for m in gpu_models())])


def host_identity() -> RuntimeIdentity:
    """The identity of the host runtime on this machine (the planner's default)."""
    return RuntimeIdentity(kind="host", device=device_class())
