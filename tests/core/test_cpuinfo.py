"""One reader of /proc/cpuinfo for every layer: the first processor's model and flags."""

from __future__ import annotations

from efflab.core import cpuinfo
from efflab.papers import capabilities
from efflab.results.provenance import host_info

TWO = (
    "processor\t: 0\nmodel name\t: Xeon A\nflags\t\t: fpu avx2 avx512f\n\n"
    "processor\t: 1\nmodel name\t: Xeon B\nflags\t\t: fpu\n"
)


def test_first_processor_wins_and_arm_features_count_as_flags() -> None:
    info = cpuinfo.parse(TWO)
    assert info.model == "Xeon A" and info.flags == {"fpu", "avx2", "avx512f"}
    arm = cpuinfo.parse("processor\t: 0\nFeatures\t: fp asimd\nCPU part\t: 0xd0c\n")
    assert arm.model == "" and arm.flags == {"fp", "asimd"}
    assert cpuinfo.parse("") == cpuinfo.CpuInfo("", frozenset())


def test_every_layer_reads_the_same_cpu() -> None:
    me = cpuinfo.this_cpu()
    assert capabilities.this_machine().cpu_model == me.model or not me.model
    assert capabilities.this_machine().flags == me.flags
    assert host_info()["cpu_model"] == me.model
