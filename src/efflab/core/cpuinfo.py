"""The one reader of /proc/cpuinfo: the CPU's model name and feature flags.

Several layers need them — the runtime identity (the CPU class in every key), the
machine a claim requires, provenance, the MLPerf system description, the service's
worker — and each once parsed the file its own way (one took the *last* flags line,
another the first model name only). Parsing lives here; callers pass the text in tests.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PATH = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuInfo:
    """The first processor's model name and flags (x86 `flags`, Arm `Features`)."""

    model: str
    flags: frozenset[str]


def parse(text: str) -> CpuInfo:
    model, flags = "", frozenset[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model, flags)


def text() -> str:
    """The file's text, '' where there is none (not Linux, a sandbox without /proc)."""
    try:
        return PATH.read_text()
    except OSError:
        return ""


@cache
def this_cpu() -> CpuInfo:
    """This machine's CPU; the model falls back to platform.processor() off Linux."""
    info = parse(text())
    return info if info.model else CpuInfo(platform.processor() or "", info.flags)
