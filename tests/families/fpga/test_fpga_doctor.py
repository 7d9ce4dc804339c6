"""`efflab doctor` (efflab.envs.doctor): one row per external tool, install hints when missing.

The real checks run (tool subprocesses, imports in a child interpreter); the missing
case is produced by emptying PATH, so nothing on the machine is changed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
try:
    from efflab.envs import doctor
except ImportError:  # framework not installed into the venv yet: use the source tree
    sys.path.insert(0, str(REPO / "src"))
    from efflab.envs import doctor
from efflab.plan.registry import Registry  # noqa: E402

TOOLS = {
    "docker",
    "yosys",
    "nextpnr-ice40",
    "iverilog",
    "vvp",
    "icepack",
    "mlperf_loadgen",
    "torch",
    "onnxruntime",
    "onnx",
    "sklearn",
    "simpy",
    "scipy",  # the edge-digits tournament steps (edge-tour-*) augment with scipy.ndimage
}

# what the project's scripts declare in meta.yaml `requires:` (the doctor names no tool)
REQ = Registry.for_repo(REPO).requirements()


def test_collect_reports_every_tool() -> None:
    rows = doctor.collect(REQ)
    assert {r["tool"] for r in rows} == TOOLS
    for r in rows:
        assert set(r) >= {"tool", "ok", "version", "hint"}
        assert isinstance(r["ok"], bool) and r["hint"]
        assert r["version"] is None or isinstance(r["version"], str)


def test_missing_executables_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    rows = {r["tool"]: r for r in doctor.collect(REQ)}
    for tool in ("yosys", "nextpnr-ice40", "iverilog", "vvp", "icepack"):
        assert rows[tool]["ok"] is False and rows[tool]["version"] is None
        assert rows[tool]["hint"].startswith("apt-get install -y ")  # from the script's meta.yaml


def test_main_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc = doctor.main(["--json"], REQ)
    rows = json.loads(capsys.readouterr().out)
    assert rc == (0 if all(r["ok"] for r in rows) else 1)
    doctor.main([], REQ)
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["tool", "status", "version"]
    assert all(t in out for t in TOOLS)
    assert doctor.main(["--bogus"], REQ) == 2
