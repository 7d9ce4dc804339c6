"""CPU facts that decide how vLLM should run here (read from /proc/cpuinfo's flags)."""

from __future__ import annotations

from pathlib import Path


def cpu_flags() -> set[str]:
    """The first processor's flags; empty where /proc/cpuinfo is unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def resolve_dtype(dtype: str, flags: set[str] | None = None) -> str:
    """`auto` = bfloat16 only where the CPU has native bf16 (AVX512-BF16 or AMX-BF16).

    Without them vLLM's CPU kernels emulate bf16 and run many times slower than float32.
    """
    if dtype != "auto":
        return dtype
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if {"avx512_bf16", "amx_bf16"} & flags else "float32"
