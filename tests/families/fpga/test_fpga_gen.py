"""FPGA family, generation side: Verilog generators against their Python reference.

Every generated engine is simulated with the real Icarus Verilog on corner-case and
random vectors (a few seconds in all); the deliberately wrong designs must be caught,
otherwise the verification gate that protects the resource numbers proves nothing.
Also the pure parameter rules that back every ``check.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
from conftest import add_family_lib  # noqa: E402

add_family_lib("fpga")  # fpgalib, as include: does

from fpgalib import gen, params, verify  # noqa: E402
from fpgalib.tools import INSTALL, ToolMissing, require  # noqa: E402

needs_iverilog = pytest.mark.skipif(
    not (shutil.which("iverilog") and shutil.which("vvp")), reason=f"iverilog missing ({INSTALL})"
)

SIZES = [(1, 1), (3, 2), (4, 4), (5, 3), (8, 16)]


@needs_iverilog
@pytest.mark.parametrize("datapath", params.DATAPATHS)
@pytest.mark.parametrize("n,m", SIZES)
def test_generated_designs_match_reference(datapath: str, n: int, m: int, tmp_path: Path) -> None:
    design = gen.generate(datapath, n, m)
    result = verify.verify(design, count=6, seed=n * 100 + m, workdir=tmp_path)
    assert result["checked"] == 6 * m
    assert result["mismatches"] == []


@needs_iverilog
@pytest.mark.parametrize("group", [1, 3, 4])
def test_table_lookup_other_group_sizes(group: int, tmp_path: Path) -> None:
    design = gen.generate("table-lookup", 7, 3, group=group)  # 7 is not a multiple: padding
    assert verify.verify(design, count=6, seed=group, workdir=tmp_path)["mismatches"] == []


@needs_iverilog
@pytest.mark.parametrize("datapath", params.DATAPATHS)
def test_injected_bug_is_caught(datapath: str, tmp_path: Path) -> None:
    design = gen.generate(datapath, 4, 4, bug=True)
    with pytest.raises(verify.VerificationError, match="differ from the Python reference"):
        verify.verify(design, count=4, seed=0, workdir=tmp_path)


def test_bitweight_engine_has_no_multiply_operator() -> None:
    """The bit-weight form sums gated activations per weight bit; no `*` remains."""
    v = gen.generate("mac8-bw", 4, 2).verilog
    assert "*" not in v.replace("(*", "").replace("*)", "")
    assert "<<< 7" in v and "- ($signed" in v  # the sign bit's plane is subtracted
    assert "*" in gen.generate("mac8", 4, 2).verilog


def test_corner_vectors_hit_the_extremes() -> None:
    """The first vectors drive the largest |sum|, where a too-narrow accumulator overflows."""
    design = gen.generate("mac8", 8, 2)
    vecs = verify.make_vectors(design, 5, seed=0)
    assert len(vecs) == 5
    assert gen.reference(vecs[0].weights, vecs[0].acts) == [8 * 128 * 128] * 2
    assert max(abs(v) for v in gen.reference(vecs[0].weights, vecs[0].acts)) < 2 ** (
        design.out_bits - 1
    )


def test_skeleton_keeps_weights_loadable_and_rows_selectable() -> None:
    """Shift-register inputs and a row mux: synthesis can neither fold weights nor drop rows."""
    v = gen.generate("ternary", 4, 3).verilog
    assert "input wire w_en" in v and "input wire [1:0] w_in" in v and "input wire [1:0] sel" in v
    assert all(f"y <= acc_r{r};" in v for r in range(3))
    assert "*" not in v.split("module", 1)[1]  # no multiplier in the ternary engine
    assert "*" in gen.generate("mac8", 2, 2).verilog


def test_table_code_roundtrip() -> None:
    """Every ternary group maps to sign + index of a stored pattern, and back."""
    import itertools

    for group in (1, 2, 3):
        stored = gen.base_patterns(group)
        assert len(stored) == (3**group - 1) // 2 + 1  # symmetry halves the table
        for ws in itertools.product((-1, 0, 1), repeat=group):
            code = gen.table_code(list(ws))
            assert code < 2 ** (gen.clog2(len(stored)) + 1)
            assert gen.table_digits(code, group) == list(ws)


def test_generate_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown datapath"):
        gen.generate("fp16", 4, 4)
    with pytest.raises(ValueError, match=">= 1"):
        gen.generate("ternary", 0, 4)


@pytest.mark.parametrize(
    "inputs,field",
    [
        ({"size": "0x4"}, "size"),
        ({"size": "-4x4"}, "size"),
        ({"size": "4x"}, "size"),
        ({"size": "128x128"}, "size"),
        ({"datapath": "int4"}, "datapath"),
        ({"group": 0}, "group"),
        ({"group": True}, "group"),
        ({"device": "ecp5"}, "device"),
        ({"device": "up5k", "package": "ct256"}, "package"),
        ({"seed": -1}, "seed"),
    ],
)
def test_check_rejects_bad_inputs(inputs: dict, field: str) -> None:
    problems = params.check(inputs)
    assert [p[0] for p in problems] == [field], problems


def test_check_accepts_defaults() -> None:
    good = {"datapath": "table-lookup", "size": "8x16", "group": 2, "device": "hx8k"}
    assert params.check({**good, "package": "ct256", "seed": 1}) == []
    assert params.parse_size("8x16") == (8, 16)


def test_missing_tool_names_tool_and_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ToolMissing) as err:
        require("nextpnr-ice40")
    assert "nextpnr-ice40" in str(err.value) and INSTALL in str(err.value)
