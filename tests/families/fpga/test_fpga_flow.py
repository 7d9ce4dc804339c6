"""FPGA family, tool side: the four scripts chained through run(ctx) with real tools.

gen -> synth-ice40 / synth-xc7 -> pnr on the smallest designs (a few seconds each on
2 cores), as the planner would chain them.  Checks that the yosys and nextpnr parsers
read the tools' real output, that a design that does not fit the device is a recorded
outcome (fits=0), that a wrong design never reaches synthesis, and that a missing
tool fails with its name and the install command.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
try:
    from efflab.plan.registry import parse_script
    from efflab.runtime.ctx import Context, DepOutputs
except ImportError:  # framework not installed into the venv yet: use the source tree
    sys.path.insert(0, str(REPO / "src"))
    from efflab.plan.registry import parse_script
    from efflab.runtime.ctx import Context, DepOutputs

from conftest import add_family_lib  # noqa: E402

add_family_lib("fpga")  # fpgalib, as include: does
from fpgalib import pnr, synth  # noqa: E402
from fpgalib.tools import INSTALL, ToolMissing  # noqa: E402
from fpgalib.verify import VerificationError  # noqa: E402

TOOLS = ("yosys", "nextpnr-ice40", "iverilog", "vvp")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS), reason=f"FPGA tools missing ({INSTALL})"
)


def call(alias: str, out: Path, deps: dict[str, DepOutputs] | None = None, rep: int = 0, **inputs):
    """Validate inputs like the planner, run the script's run(ctx), check declared outputs."""
    script = parse_script(REPO / "scripts" / alias)
    full = {**script.defaults(), **inputs}
    errors = list(script.input_validator.iter_errors(full))
    assert not errors, errors[0].message
    assert script.checker is not None and script.checker(full) == []
    spec = importlib.util.spec_from_file_location(
        f"fpga_test_{alias.replace('-', '_')}", script.path / "run.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(inputs=full, out_dir=out, deps=deps or {}, repetition=rep, script_dir=script.path)
    res = mod.run(ctx)
    metrics = res.get("metrics", {})
    for name, decl in script.metrics.items():
        assert decl.get("optional") or name in metrics, f"{alias}: metric {name} missing"
    assert set(metrics) <= set(script.metrics), set(metrics) - set(script.metrics)
    assert all(isinstance(v, int | float) and math.isfinite(v) for v in metrics.values())
    files = {k: out / v for k, v in res.get("files", {}).items()}
    assert all(p.is_file() for p in files.values()), files
    return DepOutputs(metrics=metrics, files=files, values=res.get("values", {}), alias=alias)


def chain(tmp: Path, **design: Any) -> dict[str, DepOutputs]:
    gen = call("fpga-gen", tmp / "gen", **design)
    deps = {"design": gen}
    return {
        "gen": gen,
        "ice40": call("fpga-synth-ice40", tmp / "ice40", deps, **design),
        "xc7": call("fpga-synth-xc7", tmp / "xc7", deps, **design),
    }


@pytest.fixture(scope="module")
def ternary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, DepOutputs]]:
    tmp = tmp_path_factory.mktemp("ternary2x2")
    return tmp, chain(tmp, datapath="ternary", size="2x2")


def test_synthesis_counts_come_from_real_yosys_stat(ternary) -> None:
    tmp, d = ternary
    ice40 = d["ice40"]
    stat = json.loads((tmp / "ice40" / "stat_ice40.json").read_text())
    cells = synth.cell_counts(stat, "mvm")
    assert ice40.metrics["ice40_lut4"] == cells["SB_LUT4"] > 0
    assert ice40.metrics["ice40_carry"] == cells.get("SB_CARRY", 0) > 0  # adder tree on carries
    # 4 ternary weights x 2 bits + 2 activations x 8 bits + 2 rows x 10-bit sums + 10-bit y
    assert ice40.metrics["ice40_dff"] == 4 * 2 + 2 * 8 + 2 * 10 + 10
    xc7 = d["xc7"]
    assert xc7.metrics["xc7_lut"] > 0 and xc7.metrics["xc7_dsp"] == 0
    assert xc7.values["nodsp_reused"] and xc7.metrics["xc7_lut_nodsp"] == xc7.metrics["xc7_lut"]


def test_pnr_fits_and_reports_fmax(ternary) -> None:
    tmp, d = ternary
    deps = {"ice40": d["ice40"], "xc7": d["xc7"]}
    a = call(
        "fpga-pnr",
        tmp / "pnr0",
        deps,
        datapath="ternary",
        size="2x2",
        device="hx1k",
        package="vq100",
    )
    b = call(
        "fpga-pnr",
        tmp / "pnr1",
        deps,
        rep=1,
        datapath="ternary",
        size="2x2",
        device="hx1k",
        package="vq100",
    )
    assert a.values["seed"] == 1 and b.values["seed"] == 2  # repetition r -> seed + r
    for r in (a, b):
        assert r.metrics["fits"] == 1 and 10 < r.metrics["fmax_mhz"] < 1000
        assert r.metrics["logic_cells"] >= d["ice40"].metrics["ice40_lut4"]
        assert r.metrics["ice40_lut4"] == d["ice40"].metrics["ice40_lut4"]  # carried along
    report = json.loads(a.files["report"].read_text())
    parsed_log = pnr.parse_log(a.files["log"].read_text())
    parsed_rep = pnr.parse_report(report)
    assert parsed_log["utilization"]["ICESTORM_LC"] == parsed_rep["utilization"]["ICESTORM_LC"]
    assert parsed_log["utilization"]["ICESTORM_LC"] == (a.metrics["logic_cells"], 1280)
    assert abs(parsed_log["fmax"][next(iter(parsed_log["fmax"]))] - a.metrics["fmax_mhz"]) < 0.01


def test_does_not_fit_is_a_result_not_a_crash(ternary) -> None:
    tmp, d = ternary
    deps = {"ice40": d["ice40"], "xc7": d["xc7"]}
    # the 2x2 engine needs 24 I/Os; the LP384 in QN32 bonds out fewer
    r = call(
        "fpga-pnr",
        tmp / "nofit",
        deps,
        datapath="ternary",
        size="2x2",
        device="lp384",
        package="qn32",
    )
    assert r.metrics["fits"] == 0 and "fmax_mhz" not in r.metrics
    assert r.metrics["logic_cells"] > 0 and "sb_io" in r.values["reason"]


def test_logic_cell_overflow_is_a_result(tmp_path: Path) -> None:
    d = chain(tmp_path, datapath="ternary", size="4x4")
    deps = {"ice40": d["ice40"], "xc7": d["xc7"]}
    r = call(
        "fpga-pnr",
        tmp_path / "nofit",
        deps,
        datapath="ternary",
        size="4x4",
        device="lp384",
        package="cm49",
    )
    assert r.metrics["fits"] == 0 and r.metrics["logic_cells"] > 384 and r.metrics["lc_util"] > 1
    assert "ICESTORM_LC" in r.values["reason"]


def test_mac8_uses_dsp_and_nodsp_is_synthesized(tmp_path: Path) -> None:
    d = chain(tmp_path, datapath="mac8", size="1x1")
    xc7 = d["xc7"].metrics
    assert xc7["xc7_dsp"] == 1 and not d["xc7"].values["nodsp_reused"]
    assert xc7["xc7_lut_nodsp"] > xc7["xc7_lut"] + 50  # the multiplier moved into LUTs


def test_bitweight_engine_keeps_the_skeleton_and_has_no_multiplier(tmp_path: Path) -> None:
    """mac8-bw (fpga-bitweight) against mac8 at 2x1: the same registers (weights,
    activations, row sums, y), so LUT differences are the arithmetic's alone; and no
    multiplier is left, so the xc7 flow infers no DSP."""
    bw = chain(tmp_path / "bw", datapath="mac8-bw", size="2x1")
    mac = chain(tmp_path / "mac", datapath="mac8", size="2x1")
    assert bw["ice40"].metrics["ice40_dff"] == mac["ice40"].metrics["ice40_dff"]
    assert bw["gen"].values["out_bits"] == mac["gen"].values["out_bits"]
    assert bw["xc7"].metrics["xc7_dsp"] == 0 and mac["xc7"].metrics["xc7_dsp"] >= 1
    assert bw["ice40"].metrics["ice40_lut4"] > 0


def test_wrong_design_fails_before_synthesis(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="differ from the Python reference"):
        call("fpga-gen", tmp_path, datapath="table-lookup", size="4x2", inject_bug=True)
    assert not (tmp_path / "design.v").exists()  # nothing a synthesis step could pick up


def test_missing_tool_fails_with_install_hint(ternary, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp, d = ternary
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing, match="yosys.*apt-get install -y yosys nextpnr-ice40"):
        call(
            "fpga-synth-ice40", tmp / "nopath", {"design": d["gen"]}, datapath="ternary", size="2x2"
        )


def test_schema_rejects_bad_inputs() -> None:
    script = parse_script(REPO / "scripts" / "fpga-pnr")
    for bad in ({"size": "0x4"}, {"size": "-2x2"}, {"datapath": "fp16"}, {"device": "ecp5"}):
        assert list(script.input_validator.iter_errors({**script.defaults(), **bad})), bad
    assert script.checker({**script.defaults(), "device": "up5k", "package": "ct256"})
