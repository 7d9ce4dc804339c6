"""Functional verification of a generated engine with Icarus Verilog.

Why: a resource count of a wrong circuit is worthless (a dropped sign bit makes a
multiplier smaller).  Every design is simulated on random and corner-case vectors and
its outputs are compared *in Python* with :func:`fpgalib.gen.reference`; the testbench
only drives the load/select protocol and prints what ``y`` shows.
"""

from __future__ import annotations

import random
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .gen import Design, random_weights, reference, weight_elements
from .params import INT8_WEIGHTS
from .tools import require


class VerificationError(RuntimeError):
    """The generated design disagrees with the Python reference."""


@dataclass
class Vector:
    weights: list[list[int]]
    acts: list[int]


def make_vectors(design: Design, count: int, seed: int) -> list[Vector]:
    """Corner cases first (largest magnitudes, sign extremes), then random vectors."""
    rng = random.Random(seed)
    n, m, dp = design.n, design.m, design.datapath
    wmin, wmax = (-128, 127) if dp in INT8_WEIGHTS else (-1, 1)
    corners = [
        Vector([[wmin] * n for _ in range(m)], [-128] * n),  # largest positive sum
        Vector([[wmax] * n for _ in range(m)], [-128] * n),  # most negative sum
        Vector([[wmax if (r + c) % 2 else wmin for c in range(n)] for r in range(m)], [127] * n),
    ]
    randoms = [
        Vector(random_weights(dp, n, m, rng), [rng.randint(-128, 127) for _ in range(n)])
        for _ in range(count)
    ]
    return (corners + randoms)[: max(count, 1)]


def testbench(design: Design, vectors: list[Vector]) -> str:
    """Verilog testbench: load each vector through the shift registers, print every row."""
    d = design
    lines = [
        "`timescale 1ns/1ps",
        "module tb;",
        "  reg clk = 0; reg w_en = 0; reg a_en = 0;",
        f"  reg [{d.w_bits - 1}:0] w_in = 0;",
        "  reg signed [7:0] a_in = 0;",
        f"  reg [{d.sel_bits - 1}:0] sel = 0;",
        f"  wire signed [{d.out_bits - 1}:0] y;",
        f"  {d.top} dut(.clk(clk), .w_en(w_en), .w_in(w_in), .a_en(a_en), .a_in(a_in), .sel(sel), .y(y));",
        "  always #5 clk = ~clk;",
        "  task tick; begin @(posedge clk); #1; end endtask",
        "  initial begin",
    ]
    for v_idx, vec in enumerate(vectors):
        elems = weight_elements(d, vec.weights)
        # Element i of the chain ends up holding the value pushed K-1-i cycles before the end.
        lines.append("    w_en = 1;")
        lines += [f"    w_in = {d.w_bits}'d{e}; tick;" for e in reversed(elems)]
        lines.append("    w_en = 0; a_en = 1;")
        lines += [f"    a_in = {a & 0xFF}; tick;" for a in reversed(vec.acts)]
        lines.append("    a_en = 0; tick;")  # acc_r registers the new sums
        for r in range(d.m):
            lines.append(f'    sel = {r}; tick; $display("Y {v_idx} {r} %0d", y);')
    lines += ['    $display("DONE");', "    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


_Y_RE = re.compile(r"^Y (\d+) (\d+) (-?\d+)$")


def simulate(design: Design, vectors: list[Vector], workdir: Path, timeout_s: float = 300) -> dict:
    """Compile and run the testbench; return counts and mismatches (raises on tool errors)."""
    iverilog, vvp = require("iverilog"), require("vvp")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "design.v").write_text(design.verilog)
    (workdir / "tb.v").write_text(testbench(design, vectors))
    t0 = time.perf_counter()
    comp = subprocess.run(
        [iverilog, "-g2005", "-o", "sim.vvp", "tb.v", "design.v"],
        cwd=workdir, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    if comp.returncode:
        raise VerificationError(f"iverilog failed to compile the design:\n{comp.stderr[-2000:]}")
    sim = subprocess.run(
        [vvp, "-n", "sim.vvp"], cwd=workdir, capture_output=True, text=True, timeout=timeout_s
    )
    (workdir / "sim.log").write_text(sim.stdout + sim.stderr)
    seconds = time.perf_counter() - t0
    if sim.returncode or "DONE" not in sim.stdout:
        raise VerificationError(
            f"simulation did not finish (rc={sim.returncode}):\n{sim.stderr[-2000:]}"
        )
    got: dict[tuple[int, int], int] = {}
    for line in sim.stdout.splitlines():
        if mt := _Y_RE.match(line.strip()):
            got[(int(mt.group(1)), int(mt.group(2)))] = int(mt.group(3))
    mismatches = []
    for v_idx, vec in enumerate(vectors):
        for r, exp in enumerate(reference(vec.weights, vec.acts)):
            if got.get((v_idx, r)) != exp:
                mismatches.append(
                    {"vector": v_idx, "row": r, "expected": exp, "got": got.get((v_idx, r))}
                )
    return {"checked": len(vectors) * design.m, "mismatches": mismatches, "sim_s": seconds}


def verify(design: Design, count: int, seed: int, workdir: Path) -> dict:
    """Simulate ``count`` vectors; raise :class:`VerificationError` on any mismatch."""
    result = simulate(design, make_vectors(design, count, seed), workdir)
    if result["mismatches"]:
        bad = result["mismatches"]
        raise VerificationError(
            f"{design.datapath} {design.n}x{design.m}: {len(bad)} of {result['checked']} outputs "
            f"differ from the Python reference, first: {bad[:3]}"
        )
    return result
