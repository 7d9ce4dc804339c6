"""yosys synthesis flows and the parser for ``stat -json``.

Three flows, each one yosys process so its wall time is attributable:

* ``ice40``: ``synth_ice40`` (LUT fabric only, no ``-dsp``: the HX parts have no DSP and
  an UP5K has 8, which would turn the comparison into "who fits in 8 DSPs"); also
  writes the JSON netlist nextpnr-ice40 places.
* ``xc7``: ``synth_xilinx -family xc7 -flatten`` (DSP48E1 inference allowed; flat so
  yosys can pack the adder tree into the DSPs' post-adders);
* ``xc7-nodsp``: the same with ``-nodsp``, so multipliers cost LUTs like on iCE40.

Hierarchy: the fabric flows (ice40, xc7-nodsp) keep modules during synthesis and
flatten after mapping.  Only ``mac8`` has a submodule (its multiplier): synthesized
flat, yosys merges 128 multipliers and the adder tree into one huge ``$macc`` that
maps worse (30.5k vs 27.1k LUT4 at 8x16) and takes ~9x the CPU time.  Both choices
favour the int8 baseline, i.e. they are conservative for "ternary is cheaper".
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from .tools import require

FLOWS = {
    # ``-run :check`` + the check section minus ``autoname`` (it only prettifies names
    # and took half the CPU time on large designs); flattened after mapping for nextpnr.
    "ice40": "synth_ice40 -noflatten -top {top} -run :check; hierarchy -check; check -noinit; "
    "flatten; write_json {netlist}",
    "xc7": "synth_xilinx -flatten -family xc7 -top {top}",
    "xc7-nodsp": "synth_xilinx -nodsp -family xc7 -top {top}; flatten",
}


class SynthesisError(RuntimeError):
    """yosys failed on a design (syntax error, unsupported construct, crash)."""


def cell_counts(stat: dict, top: str) -> dict[str, int]:
    """Cells by type of module ``top`` from a ``stat -json`` document.

    yosys escapes module names (``\\mvm``) and, for a flat design, also reports the same
    counts under ``design``; the module entry wins, ``design`` is the fallback.
    """
    modules = stat.get("modules", {})
    for key in (f"\\{top}", top):
        if key in modules:
            return dict(modules[key].get("num_cells_by_type", {}))
    if "design" in stat:
        return dict(stat["design"].get("num_cells_by_type", {}))
    raise ValueError(f"no module {top!r} in yosys stat output (modules: {sorted(modules)})")


def ice40_summary(cells: dict[str, int]) -> dict[str, int]:
    """iCE40 resource classes: LUT4, carry cells, flip-flops (every SB_DFF* variant)."""
    return {
        "lut4": cells.get("SB_LUT4", 0),
        "carry": cells.get("SB_CARRY", 0),
        "dff": sum(v for k, v in cells.items() if k.startswith("SB_DFF")),
        "ram": sum(v for k, v in cells.items() if k.startswith("SB_RAM")),
        "dsp": cells.get("SB_MAC16", 0),
    }


def xc7_summary(cells: dict[str, int]) -> dict[str, int]:
    """7-series resource classes: LUT1..LUT6, CARRY4, DSP48E1, FD* flip-flops, SRLs."""
    return {
        "lut": sum(v for k, v in cells.items() if k.startswith("LUT") and k[3:4].isdigit()),
        "carry4": cells.get("CARRY4", 0),
        "dsp": cells.get("DSP48E1", 0),
        "ff": sum(v for k, v in cells.items() if k.startswith("FD")),
        "srl": sum(v for k, v in cells.items() if k.startswith("SRL")),
        "muxf": sum(v for k, v in cells.items() if k.startswith("MUXF")),
    }


def run_flow(flow: str, design_v: Path, top: str, workdir: Path, timeout_s: float = 900) -> dict:
    """Run one yosys flow; return ``{"cells", "summary", "seconds", "netlist"?}``."""
    yosys = require("yosys")
    workdir.mkdir(parents=True, exist_ok=True)
    netlist = workdir / "netlist_ice40.json"
    stat_file = workdir / f"stat_{flow}.json"
    script = "; ".join(
        [
            f"read_verilog {design_v}",
            FLOWS[flow].format(top=top, netlist=netlist),
            f"tee -q -o {stat_file} stat -json",
        ]
    )
    log = workdir / f"yosys_{flow}.log"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [yosys, "-q", "-l", str(log), "-p", script],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    seconds = time.perf_counter() - t0
    if proc.returncode or not stat_file.is_file():
        raise SynthesisError(
            f"yosys {flow} failed (rc={proc.returncode}):\n{(proc.stderr or proc.stdout)[-2000:]}"
        )
    cells = cell_counts(json.loads(stat_file.read_text()), top)
    summary = ice40_summary(cells) if flow == "ice40" else xc7_summary(cells)
    out = {"cells": cells, "summary": summary, "seconds": seconds}
    if flow == "ice40":
        out["netlist"] = netlist
    return out


def yosys_version() -> str:
    """``Yosys 0.23 (git sha1 ...)`` -> recorded with results so numbers stay attributable."""
    proc = subprocess.run([require("yosys"), "-V"], capture_output=True, text=True, timeout=30)
    return proc.stdout.strip()
