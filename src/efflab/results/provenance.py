"""Provenance captured once per `efflab run`: git state, host, Python and packages."""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

KEY_PACKAGES = [
    "efflab",
    "snakemake",
    "numpy",
    "pandas",
    "torch",
    "onnx",
    "onnxruntime",
    "scikit-learn",
    "mlcommons-loadgen",
    "simpy",
    "docker",
]


@cache
def git_state(repo: Path) -> dict[str, Any]:
    try:
        import git

        r = git.Repo(repo, search_parent_directories=True)
        commit = r.head.commit.hexsha if r.head.is_valid() else None
        return {"commit": commit, "dirty": r.is_dirty(untracked_files=False)}
    except Exception as exc:  # not a repo, no git binary: say so rather than guess
        return {"commit": None, "dirty": None, "error": type(exc).__name__}


@cache
def host_info() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 2),
        "os": platform.platform(),
        "machine": platform.machine(),
    }


@cache
def packages() -> dict[str, str]:
    out = {}
    for name in KEY_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def collect(repo: Path) -> dict[str, Any]:
    return {
        "git": git_state(repo),
        "host": host_info(),
        "python": platform.python_version(),
        "packages": packages(),
    }
