"""Generate one engine and prove it correct before anything counts its resources.

Why a separate step: synthesis is shared by every P&R seed and both target families,
so the design is verified once here and a failure stops the whole branch of the DAG
(a wrong multiplier can be smaller; its LUT count must never reach a table).
"""

from __future__ import annotations

from fpgalib.gen import generate
from fpgalib.params import check, parse_size, raise_on_problems
from fpgalib.verify import verify


def run(ctx) -> dict:
    inputs = ctx.inputs
    raise_on_problems(check(inputs))
    n, m = parse_size(inputs["size"])
    with ctx.timer("generate"):
        design = generate(inputs["datapath"], n, m, group=inputs["group"], bug=inputs["inject_bug"])
    ctx.log.info("generated %s %dx%d: %d weight elements of %d bits, y is %d bits",
                 design.datapath, n, m, design.w_elems, design.w_bits, design.out_bits)  # fmt: skip
    with ctx.timer("verify"):
        result = verify(design, inputs["vectors"], ctx.seed, ctx.out_dir / "sim")
    (ctx.out_dir / "design.v").write_text(design.verilog)
    ctx.log.info("verified: %d outputs match the Python reference", result["checked"])
    return {
        "metrics": {
            "outputs_checked": result["checked"],
            "sim_s": result["sim_s"],
            "verilog_lines": design.verilog.count("\n"),
        },
        "files": {"design": "design.v"},
        "values": {
            "top": design.top,
            "n_inputs": n,
            "rows": m,
            "weight_bits": design.w_bits,
            "weight_elements": design.w_elems,
            "out_bits": design.out_bits,
        },
    }
