"""Place and route one synthesized design with one seed; carry the synthesis counts along.

Why the seed is the repetition: nextpnr's Fmax varies by several MHz between seeds,
while the synthesized netlist (and so every LUT count) does not.  Making the seed the
repetition keeps one table row per design with Fmax median/spread over seeds, and the
LUT columns (identical across seeds) stay directly comparable between datapaths.
"""

from __future__ import annotations

from fpgalib.params import DEVICES, check, raise_on_problems
from fpgalib.pnr import nextpnr_version, place_and_route


def run(ctx) -> dict:
    inputs = ctx.inputs
    raise_on_problems(check(inputs))
    seed = inputs["seed"] + ctx.repetition
    ice40, xc7 = ctx.deps["ice40"], ctx.deps["xc7"]
    device, package = inputs["device"], inputs["package"]
    with ctx.timer("pnr"):
        res = place_and_route(
            ice40.files["netlist"],
            device,
            package,
            seed,
            ctx.out_dir,
            freq_mhz=float(inputs["freq_mhz"]),
        )
    lcs = res["logic_cells"]
    avail = res["logic_cells_available"] or DEVICES[device]["lcs"]
    metrics = {
        "fits": int(res["fits"]),
        "pnr_s": res["seconds"],
        **{k: ice40.metrics[k] for k in ("ice40_lut4", "ice40_carry", "ice40_dff", "synth_s")},
        **{k: xc7.metrics[k] for k in ("xc7_lut", "xc7_carry4", "xc7_dsp", "xc7_lut_nodsp")},
    }
    if lcs is not None:
        metrics["logic_cells"] = lcs
        metrics["lc_util"] = lcs / avail
    if res["fits"]:
        metrics["fmax_mhz"] = res["fmax_mhz"]
        ctx.log.info(
            "%s/%s seed %d: %d LCs, Fmax %.1f MHz", device, package, seed, lcs, res["fmax_mhz"]
        )
    else:
        ctx.log.warning("%s/%s: does not fit (%s)", device, package, res["reason"])
    report = ctx.out_dir / f"report_seed{seed}.json"
    files = {"log": f"nextpnr_seed{seed}.log"}
    if report.is_file():
        files["report"] = report.name
    return {
        "metrics": metrics,
        "files": files,
        "values": {
            "seed": seed,
            "device": device,
            "package": package,
            "fits": res["fits"],
            "reason": res.get("reason"),
            "utilization": res["utilization"],
            "fmax_by_clock": res.get("fmax_by_clock"),
            "nextpnr": nextpnr_version(),
            "command": res["command"],
        },
    }
