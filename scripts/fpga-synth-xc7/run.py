"""7-series synthesis of one verified design, with and without DSP48E1 inference.

Why ``-nodsp`` too: with DSPs an int8 MAC hides in 128 hard multipliers and looks
nearly free in LUTs; ``-nodsp`` shows what the same multipliers cost in fabric, the
fair comparison with the multiplier-free ternary and table-lookup engines.  When the
DSP-enabled run infers no DSP48E1 at all (no multiplier in the design), ``-nodsp``
cannot change the netlist, so its run is skipped and the counts are reused.
"""

from __future__ import annotations

from fpgalib.params import check, raise_on_problems
from fpgalib.synth import run_flow, yosys_version


def run(ctx) -> dict:
    raise_on_problems(check(ctx.inputs))
    design = ctx.deps["design"]
    top = design.values.get("top", "mvm")
    with ctx.timer("synth_xc7"):
        dsp = run_flow("xc7", design.files["design"], top, ctx.out_dir)
    if dsp["summary"]["dsp"] == 0:
        nodsp, reused = dsp, True
    else:
        with ctx.timer("synth_xc7_nodsp"):
            nodsp, reused = run_flow("xc7-nodsp", design.files["design"], top, ctx.out_dir), False
    s, sn = dsp["summary"], nodsp["summary"]
    ctx.log.info(
        "synth_xilinx xc7: %s; -nodsp: %s%s", s, sn, " (reused: no DSP inferred)" if reused else ""
    )
    return {
        "metrics": {
            "xc7_lut": s["lut"],
            "xc7_carry4": s["carry4"],
            "xc7_dsp": s["dsp"],
            "xc7_ff": s["ff"],
            "xc7_lut_nodsp": sn["lut"],
            "xc7_carry4_nodsp": sn["carry4"],
            "xc7_synth_s": dsp["seconds"] + (0.0 if reused else nodsp["seconds"]),
        },
        "values": {
            "cells": dsp["cells"],
            "cells_nodsp": nodsp["cells"],
            "nodsp_reused": reused,
            "yosys": yosys_version(),
        },
    }
