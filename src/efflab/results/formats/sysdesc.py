"""An MLPerf system description (`systems/<system>.json`) of this machine.

There is no `mlperf-sysinfo` package on PyPI (checked 2026-12-07: no distribution of
that name), so the fields are read here from what Linux exposes: /proc/cpuinfo,
/proc/meminfo, /sys/devices/system/cpu (caches, frequency, sockets), the disk under
the project, platform, and the measured packages' versions. What no file on the
machine says (cooling, memory configuration, networking, storage type, interconnects)
is written as "N/A" and listed by `unfilled()`.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any

from efflab.core import cpuinfo
from efflab.results.provenance import host_info

# MLPerf inference's required system-description fields, in the checker's order
FIELDS = [
    "submitter", "division", "status", "system_name", "system_type", "system_type_detail",
    "number_of_nodes", "host_processor_model_name", "host_processors_per_node",
    "host_processor_core_count", "host_processor_frequency", "host_processor_caches",
    "host_processor_interconnect", "host_memory_capacity", "host_memory_configuration",
    "host_storage_type", "host_storage_capacity", "host_networking", "host_networking_topology",
    "host_network_card_count", "accelerators_per_node", "accelerator_model_name",
    "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_capacity",
    "accelerator_memory_configuration", "accelerator_on-chip_memories", "cooling", "hw_notes",
    "framework", "operating_system", "other_software_stack", "sw_notes",
]  # fmt: skip
NA = "N/A"


def _read(p: str) -> str:
    try:
        return Path(p).read_text()
    except OSError:
        return ""


def _sockets() -> int:
    ids = set(re.findall(r"^physical id\s*:\s*(\d+)", cpuinfo.text(), re.M))
    return max(len(ids), 1)


def _caches() -> str:
    out = []
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    for d in sorted(base.glob("index*")) if base.is_dir() else []:
        level, kind, size = (_read(str(d / f)).strip() for f in ("level", "type", "size"))
        if level and size:
            tag = {"Data": "d", "Instruction": "i"}.get(kind, "")
            out.append(f"L{level}{tag}: {size}")
    return ", ".join(out) or NA


def _frequency() -> str:
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if khz.isdigit():
        return f"{int(khz) / 1000:.0f} MHz"
    mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", cpuinfo.text(), re.M)
    return f"{float(mhz.group(1)):.0f} MHz" if mhz else NA


def describe(submitter: str, division: str, system_name: str, repo: Path,
             packages: dict[str, str] | None = None) -> dict[str, str]:  # fmt: skip
    """The system description; every value a string, as MLPerf's checker expects."""
    host = host_info()
    pk = packages or {}
    sockets = _sockets()
    cores = host.get("cores") or os.cpu_count() or 0
    disk = shutil.disk_usage(repo)
    framework = ", ".join(f"{n} {pk[n]}" for n in ("torch", "onnxruntime") if n in pk) or NA
    stack = [f"Python {platform.python_version()}"]
    stack += [f"{n} {pk[n]}" for n in ("mlcommons-loadgen", "efflab") if n in pk]
    d = {
        "submitter": submitter,
        "division": division,
        "status": "Research, Development, or Internal (RDI)" if division == "open" else "available",
        "system_name": system_name,
        "system_type": "datacenter",
        "system_type_detail": "efflab host",
        "number_of_nodes": "1",
        "host_processor_model_name": host.get("cpu_model") or NA,
        "host_processors_per_node": str(sockets),
        "host_processor_core_count": str(max(cores // sockets, 1)),
        "host_processor_frequency": _frequency(),
        "host_processor_caches": _caches(),
        "host_processor_interconnect": NA,
        "host_memory_capacity": f"{host.get('memory_gb', 0):.0f} GB",
        "host_memory_configuration": NA,
        "host_storage_type": NA,
        "host_storage_capacity": f"{disk.total / 1024**3:.0f} GB",
        "host_networking": NA,
        "host_networking_topology": NA,
        "host_network_card_count": NA,
        "accelerators_per_node": "0",
        "accelerator_model_name": NA,
        "accelerator_frequency": NA,
        "accelerator_host_interconnect": NA,
        "accelerator_interconnect": NA,
        "accelerator_interconnect_topology": NA,
        "accelerator_memory_capacity": NA,
        "accelerator_memory_configuration": NA,
        "accelerator_on-chip_memories": NA,
        "cooling": NA,
        "hw_notes": f"{host.get('machine') or platform.machine()}, {cores} logical CPUs",
        "framework": framework,
        "operating_system": host.get("os") or platform.platform(),
        "other_software_stack": ", ".join(stack),
        "sw_notes": "exported by efflab mlperf export",
    }
    return {k: d[k] for k in FIELDS}


def unfilled(desc: dict[str, Any]) -> list[str]:
    """The fields nothing on the machine told (written as N/A)."""
    return [k for k in FIELDS if desc.get(k) == NA and not k.startswith("accelerator")]
