"""Verilog generators for three matrix-vector datapaths, plus their Python reference.

All three engines compute ``y[r] = sum_c W[r][c] * a[c]`` for N signed int8
activations and M rows, and share one skeleton so that resource differences come only
from the arithmetic:

* weights and activations are loaded through shift registers (``w_en``/``w_in``,
  ``a_en``/``a_in``), so synthesis cannot constant-fold the weights;
* every row's sum is registered (``acc_r<r>``) and one row leaves through a registered
  row-select multiplexer (``sel`` -> ``y``), so synthesis cannot delete unused rows;
* sums use an explicit balanced adder tree whose width grows one bit per level, so
  neither tree depth nor over-wide adders differ between datapaths.

Datapaths:

``mac8``
    int8 weights, one signed 8x8 multiplier per weight.
``ternary``
    weights in {-1, 0, +1}, 2-bit code (01 = +1, 11 = -1, else 0); each term adds,
    subtracts or skips the activation, no multipliers.
``table-lookup`` (in the spirit of TeLLMe)
    activations are split into groups of ``group``; for every group the partial sums of
    all 3**group ternary weight patterns are computed once and shared by all rows; each
    row selects its entry with the group's base-3 packed weight code
    (``ceil(log2(3**group))`` bits, e.g. 4 bits for 2 weights).

``bug=True`` injects a deliberate error (negative weights treated as positive) so
tests can prove the verification step catches wrong designs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .params import DATAPATHS

ACT_BITS = 8
TOP = "mvm"


def signed_bits(max_abs: int) -> int:
    """Smallest two's-complement width holding every value in ``[-max_abs, max_abs]``."""
    b = 1
    while (1 << (b - 1)) - 1 < max_abs:
        b += 1
    return b


def clog2(x: int) -> int:
    """ceil(log2(x)) with clog2(1) = 0."""
    return max(0, (x - 1).bit_length())


@dataclass
class Design:
    """A generated engine: its Verilog and everything a testbench needs to drive it."""

    datapath: str
    n: int
    m: int
    group: int
    verilog: str
    w_bits: int  # width of one weight-shift-register element
    w_elems: int  # number of weight-shift-register elements
    sel_bits: int
    out_bits: int
    top: str = TOP
    info: dict = field(default_factory=dict)


def _tree(lines: list[str], prefix: str, terms: list[str], width: int) -> tuple[str, int]:
    """Emit a balanced adder tree over ``terms`` (all ``width`` bits, signed).

    Returns the wire holding the sum and its width.  Each level is one bit wider than
    the one below so no adder is wider than the values it can actually carry.
    """
    level = 0
    while len(terms) > 1:
        width += 1
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            name = f"{prefix}_l{level}_{i // 2}"
            lines.append(f"  wire signed [{width - 1}:0] {name} = {terms[i]} + {terms[i + 1]};")
            nxt.append(name)
        if len(terms) % 2:
            name = f"{prefix}_l{level}_{len(terms) // 2}"
            lines.append(f"  wire signed [{width - 1}:0] {name} = {terms[-1]};")
            nxt.append(name)
        terms, level = nxt, level + 1
    return terms[0], width


def table_digits(code: int, group: int) -> list[int]:
    """Base-3 weight code -> ternary weights (digit 0 -> 0, 1 -> +1, 2 -> -1)."""
    return [(0, 1, -1)[(code // 3**i) % 3] for i in range(group)]


def table_code(weights: list[int]) -> int:
    """Ternary weights of one group -> base-3 packed code (inverse of ``table_digits``)."""
    return sum({0: 0, 1: 1, -1: 2}[w] * 3**i for i, w in enumerate(weights))


def generate(datapath: str, n: int, m: int, group: int = 2, bug: bool = False) -> Design:
    """Generate the Verilog of one engine; see the module docstring for the datapaths."""
    if datapath not in DATAPATHS:
        raise ValueError(f"unknown datapath {datapath!r}; expected one of {list(DATAPATHS)}")
    if n < 1 or m < 1:
        raise ValueError(f"sizes must be >= 1, got n={n} m={m}")
    ngroups = math.ceil(n / group)
    if datapath == "mac8":
        w_bits, w_cols, term_bits = 8, n, signed_bits(128 * 128)
    elif datapath == "ternary":
        w_bits, w_cols, term_bits = 2, n, signed_bits(128)
    else:
        w_bits, w_cols, term_bits = max(1, clog2(3**group)), ngroups, signed_bits(128 * group)
    sel_bits = max(1, clog2(m))
    k = m * w_cols
    body: list[str] = []

    # Shift registers: element 0 takes the input, element i takes element i-1.
    wnames = [f"w_{r}_{c}" for r in range(m) for c in range(w_cols)]
    anames = [f"a_{c}" for c in range(n)]
    for name in wnames:
        body.append(f"  reg [{w_bits - 1}:0] {name};")
    for name in anames:
        body.append(f"  reg signed [{ACT_BITS - 1}:0] {name};")
    body.append("  always @(posedge clk) begin")
    body.append("    if (w_en) begin")
    body.append(f"      {wnames[0]} <= w_in;")
    body += [f"      {wnames[i]} <= {wnames[i - 1]};" for i in range(1, k)]
    body.append("    end")
    body.append("    if (a_en) begin")
    body.append(f"      {anames[0]} <= a_in;")
    body += [f"      {anames[i]} <= {anames[i - 1]};" for i in range(1, n)]
    body.append("    end")
    body.append("  end")

    if datapath == "table-lookup":
        ent_bits = term_bits
        for g in range(ngroups):
            for code in range(3**group):
                ws = table_digits(code, group)
                if bug:
                    ws = [abs(w) for w in ws]
                parts = [
                    ("+" if w > 0 else "-")
                    + f"$signed({{{{{ent_bits - ACT_BITS}{{a_{c}[7]}}}}, a_{c}}})"
                    for w, c in zip(ws, range(g * group, g * group + group), strict=True)
                    if w and c < n
                ]
                expr = " ".join(parts).lstrip("+") if parts else f"{ent_bits}'sd0"
                body.append(f"  wire signed [{ent_bits - 1}:0] t_{g}_{code} = {expr};")

    width = term_bits
    for r in range(m):
        terms = []
        if datapath == "mac8":
            for c in range(n):
                w = f"w_{r}_{c}"
                wexpr = f"$signed({{1'b0, {w}[6:0]}})" if bug else f"$signed({w})"
                body.append(f"  wire signed [{term_bits - 1}:0] p_{r}_{c} = {wexpr} * a_{c};")
                terms.append(f"p_{r}_{c}")
        elif datapath == "ternary":
            for c in range(n):
                w, a = f"w_{r}_{c}", f"a_{c}"
                ext = f"{{{a}[7], {a}}}"
                neg = ext if bug else f"-{ext}"
                body.append(
                    f"  wire signed [{term_bits - 1}:0] p_{r}_{c} = "
                    f"{w} == 2'b01 ? {ext} : ({w} == 2'b11 ? {neg} : {term_bits}'sd0);"
                )
                terms.append(f"p_{r}_{c}")
        else:
            for g in range(ngroups):
                body.append(f"  reg signed [{term_bits - 1}:0] p_{r}_{g};")
                body.append("  always @* begin")
                body.append(f"    case (w_{r}_{g})")
                body += [
                    f"      {w_bits}'d{code}: p_{r}_{g} = t_{g}_{code};" for code in range(3**group)
                ]
                body.append(f"      default: p_{r}_{g} = {term_bits}'sd0;")
                body.append("    endcase")
                body.append("  end")
                terms.append(f"p_{r}_{g}")
        s, width = _tree(body, f"s_{r}", terms, term_bits)
        body.append(f"  reg signed [{width - 1}:0] acc_r{r};")
        body.append(f"  always @(posedge clk) acc_r{r} <= {s};")

    body.append("  always @(posedge clk) begin")
    body.append("    case (sel)")
    body += [f"      {sel_bits}'d{r}: y <= acc_r{r};" for r in range(m)]
    body.append(f"      default: y <= {width}'sd0;")
    body.append("    endcase")
    body.append("  end")

    header = [
        f"// generated by fpgalib.gen: datapath={datapath} n={n} m={m} group={group} bug={bug}",
        f"module {TOP} (",
        "  input wire clk,",
        "  input wire w_en,",
        f"  input wire [{w_bits - 1}:0] w_in,",
        "  input wire a_en,",
        f"  input wire signed [{ACT_BITS - 1}:0] a_in,",
        f"  input wire [{sel_bits - 1}:0] sel,",
        f"  output reg signed [{width - 1}:0] y",
        ");",
    ]
    verilog = "\n".join(header + body + ["endmodule", ""])
    return Design(datapath, n, m, group, verilog, w_bits, k, sel_bits, width)


# --------------------------------------------------------------------- reference side


def random_weights(datapath: str, n: int, m: int, rng: random.Random) -> list[list[int]]:
    """Random weights in the datapath's domain: int8 for mac8, {-1,0,+1} otherwise."""
    if datapath == "mac8":
        return [[rng.randint(-128, 127) for _ in range(n)] for _ in range(m)]
    return [[rng.choice((-1, 0, 1)) for _ in range(n)] for _ in range(m)]


def reference(weights: list[list[int]], acts: list[int]) -> list[int]:
    """The exact matrix-vector product every datapath must reproduce."""
    return [sum(w * a for w, a in zip(row, acts, strict=True)) for row in weights]


def weight_elements(design: Design, weights: list[list[int]]) -> list[int]:
    """Weights -> unsigned values of the weight shift-register elements, in chain order."""
    mask = (1 << design.w_bits) - 1
    out = []
    for row in weights:
        if design.datapath == "mac8":
            out += [w & mask for w in row]
        elif design.datapath == "ternary":
            out += [{0: 0b00, 1: 0b01, -1: 0b11}[w] for w in row]
        else:
            g = design.group
            padded = row + [0] * (-len(row) % g)
            out += [table_code(padded[i : i + g]) for i in range(0, len(padded), g)]
    return out
