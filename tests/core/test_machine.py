"""Machine state for timing: readings from /sys as found, "unknown" where absent, and
`efflab doctor --timing` on this machine."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import efflab

from efflab.core import machine


def fake_sys(root: Path, governor: str | None, boost: str | None, smt: str | None) -> Path:
    for c in os.sched_getaffinity(0):
        if governor is not None:
            f = root / f"cpu{c}/cpufreq/scaling_governor"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(governor + "\n")
    if boost is not None:
        (root / "cpufreq").mkdir(parents=True, exist_ok=True)
        (root / "cpufreq/boost").write_text(boost + "\n")
    if smt is not None:
        (root / "smt").mkdir(parents=True, exist_ok=True)
        (root / "smt/control").write_text(smt + "\n")
        (root / "smt/active").write_text("1\n" if smt == "on" else "0\n")
    return root


def test_readings_say_noisy_ok_or_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "CPU_SYS", fake_sys(tmp_path / "a", "powersave", "1", "on"))
    assert (machine.governor().status, machine.governor().value) == ("noisy", "powersave")
    assert "performance" in machine.governor().advice
    assert (machine.turbo().status, machine.turbo().value) == ("noisy", "on")
    assert machine.smt().status == "noisy"
    monkeypatch.setattr(machine, "CPU_SYS", fake_sys(tmp_path / "b", "performance", "0", "off"))
    assert machine.governor().status == machine.turbo().status == machine.smt().status == "ok"
    monkeypatch.setattr(machine, "CPU_SYS", tmp_path / "none")  # a VM hides it all
    for c in (machine.governor(), machine.turbo(), machine.smt(), machine.isolated()):
        assert (c.status, c.value) == ("unknown", "unknown"), c
    st = machine.state()
    assert st["governor"] == st["turbo"] == "unknown"


def test_counters_are_tried_for_real() -> None:
    ok, why = machine.counters_readable()
    assert ok in (True, False, "unknown") and why
    if ok is True:
        assert "counted" in why
    assert machine.parse_cpu_list("0-2,5") == [0, 1, 2, 5]
    with pytest.raises(ValueError):
        machine.parse_cpu_list("0-")


def test_doctor_timing_reports_and_exits_by_what_it_found(tiny_repo: Path) -> None:
    r = efflab(tiny_repo, "doctor", "--timing", "--json", "--sample", "0.2")
    assert r.returncode in (0, 1), r.stderr
    got = json.loads(r.stdout)
    names = {c["name"] for c in got["checks"]}
    assert {"cpu governor", "turbo/boost", "SMT (hyper-threading)", "hardware counters",
            "load", "kernel", "cpu model"} <= names  # fmt: skip
    assert all(c["status"] in ("ok", "noisy", "unknown") for c in got["checks"])
    assert all(c["advice"] for c in got["checks"] if c["status"] == "noisy")
    assert r.returncode == (1 if got["noisy"] else 0)
    text = efflab(tiny_repo, "doctor", "--timing", "--sample", "0")
    assert text.stdout.startswith("efflab doctor --timing") and "noisy," in text.stdout
    bad = efflab(tiny_repo, "doctor", "--timing", "--sample", "99")
    assert bad.returncode == 2 and bad.stderr.startswith("efflab: error: --sample")
