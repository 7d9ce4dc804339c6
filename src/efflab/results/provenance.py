"""Provenance captured once per `efflab run`: git state, host, Python and packages.

Package versions recorded: the framework's own, plus every package the project's
scripts declare in `requires:` (so no family's package is named here).
"""

from __future__ import annotations

import os
import platform
import socket
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from efflab.plan.registry import Registry

FRAMEWORK_PACKAGES = ("efflab", "snakemake", "numpy", "pandas", "docker")


@cache
def git_state(repo: Path) -> dict[str, Any]:
    try:
        import git  # GitPython: ~0.3 s to import, needed only once a run has results

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
def packages(names: tuple[str, ...] = FRAMEWORK_PACKAGES) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def declared_packages(repo: Path) -> tuple[str, ...]:
    """The framework's packages and those the project's scripts declare (`requires:`)."""
    try:
        declared = [p.dist for p in Registry.for_repo(repo).requirements().packages]
    except Exception:  # provenance never fails a run: a broken registry failed planning
        declared = []
    return tuple(dict.fromkeys([*FRAMEWORK_PACKAGES, *declared]))


def collect(repo: Path, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """`machine`: what `efflab.core.machine.state()` read when the run started
    (governor, turbo, SMT, counters, load; "unknown" where unreadable)."""
    return {
        "machine": machine,
        "git": git_state(repo),
        "host": host_info(),
        "python": platform.python_version(),
        "packages": packages(declared_packages(repo)),
    }
