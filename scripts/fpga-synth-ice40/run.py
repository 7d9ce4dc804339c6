"""iCE40 synthesis of one verified design (yosys ``synth_ice40``, no ``-dsp``).

Why a step of its own: the netlist is the input of every P&R seed, so it is computed
once per design; and it runs in parallel with the (slower) xc7 flows in the DAG.
"""

from __future__ import annotations

from fpgalib.params import check, raise_on_problems
from fpgalib.synth import run_flow, yosys_version


def run(ctx) -> dict:
    raise_on_problems(check(ctx.inputs))
    design = ctx.deps["design"]
    with ctx.timer("synth_ice40"):
        res = run_flow(
            "ice40", design.files["design"], design.values.get("top", "mvm"), ctx.out_dir
        )
    s = res["summary"]
    ctx.log.info("synth_ice40: %s in %.1fs", s, res["seconds"])
    return {
        "metrics": {
            "ice40_lut4": s["lut4"],
            "ice40_carry": s["carry"],
            "ice40_dff": s["dff"],
            "synth_s": res["seconds"],
        },
        "files": {"netlist": res["netlist"].name},
        "values": {"cells": res["cells"], "summary": s, "yosys": yosys_version()},
    }
