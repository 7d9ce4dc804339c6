"""Verilog generators for four matrix-vector datapaths, plus their Python reference.

All four engines compute ``y[r] = sum_c W[r][c] * a[c]`` for N signed int8
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
    int8 weights, one signed 8x8 multiplier per weight, each an instance of one
    ``mul8s`` module (see :mod:`fpgalib.synth` for why the hierarchy matters).
``mac8-bw`` (the bit-weight transformation of Wang et al.'s TPE paper)
    the same int8 x int8 dot product with the loops reordered in the bit-weight
    dimension: for every weight bit j, the N activations gated by bit j of their
    weight are summed first (one adder tree per bit plane, 8-bit terms), and only the
    8 plane sums are shifted and combined (the sign bit's plane subtracted).  The N
    separate multipliers and their carry-propagate adders disappear into 8 narrow
    trees; no ``$mul`` is left for yosys.
``ternary``
    weights in {-1, 0, +1}, 2-bit code (01 = +1, 11 = -1, else 0); each term adds,
    subtracts or skips the activation, no multipliers.
``table-lookup`` (in the spirit of TeLLMe)
    activations are split into groups of ``group``; for every group the partial sums of
    the ternary weight patterns are computed once and shared by all rows.  Using the
    symmetry T[-p] = -T[p] (as TeLLMe does) the table stores (3**group - 1) / 2 patterns;
    each row's group weight code is a sign bit plus an index (4 bits for 2 weights),
    it selects the entry with the index and negates it with the sign.

``bug=True`` injects a deliberate error (negative weights treated as positive) so
tests can prove the verification step catches wrong designs.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .params import DATAPATHS, INT8_WEIGHTS

ACT_BITS = 8
TOP = "mvm"
MUL = "mul8s"  # mac8's multiplier module


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


def _tree(
    lines: list[str], prefix: str, terms: list[str], width: int, cins: list[str] | None = None
) -> tuple[str, int]:
    """Emit a balanced adder tree over ``terms`` (all ``width`` bits, signed).

    Returns the wire holding the sum and its width.  Each level is one bit wider than
    the one below so no adder is wider than the values it can actually carry.  ``cins``
    are 1-bit values added as carry-ins, one per adder (free: the carry chain has the
    input anyway); at most ``len(terms) - 1`` of them.
    """
    cins = list(cins or [])
    if len(cins) > max(0, len(terms) - 1):
        raise ValueError("more carry-ins than adders in the tree")
    level = 0
    while len(terms) > 1:
        width += 1
        nxt = []
        for i in range(0, len(terms) - 1, 2):
            name = f"{prefix}_l{level}_{i // 2}"
            cin = f" + $signed({{1'b0, {cins.pop(0)}}})" if cins else ""
            lines.append(
                f"  wire signed [{width - 1}:0] {name} = {terms[i]} + {terms[i + 1]}{cin};"
            )
            nxt.append(name)
        if len(terms) % 2:
            name = f"{prefix}_l{level}_{len(terms) // 2}"
            lines.append(f"  wire signed [{width - 1}:0] {name} = {terms[-1]};")
            nxt.append(name)
        terms, level = nxt, level + 1
    return terms[0], width


def base_patterns(group: int) -> list[tuple[int, ...]]:
    """The table's stored patterns: index 0 is all-zero, then every nonzero ternary
    pattern whose first nonzero weight is +1.  Each other pattern is the negation of
    one of these, so the table holds (3**group - 1) / 2 + 1 entries instead of 3**group.
    """
    pats = [tuple((0, 1, -1)[(k // 3**i) % 3] for i in range(group)) for k in range(3**group)]
    return [(0,) * group] + [p for p in pats if any(p) and next(w for w in p if w) == 1]


def table_code(weights: list[int]) -> int:
    """Ternary weights of one group -> ``sign << index_bits | index`` into the table."""
    group = len(weights)
    pats = base_patterns(group)
    ib = clog2(len(pats))
    first = next((w for w in weights if w), 0)
    sign = int(first == -1)
    base = tuple(-w for w in weights) if sign else tuple(weights)
    return (sign << ib) | pats.index(base)


def table_digits(code: int, group: int) -> list[int]:
    """Inverse of :func:`table_code`."""
    pats = base_patterns(group)
    ib = clog2(len(pats))
    sign, idx = code >> ib, code & ((1 << ib) - 1)
    return [-w if sign else w for w in pats[idx]]


def generate(datapath: str, n: int, m: int, group: int = 2, bug: bool = False) -> Design:
    """Generate the Verilog of one engine; see the module docstring for the datapaths."""
    if datapath not in DATAPATHS:
        raise ValueError(f"unknown datapath {datapath!r}; expected one of {list(DATAPATHS)}")
    if n < 1 or m < 1:
        raise ValueError(f"sizes must be >= 1, got n={n} m={m}")
    ngroups = math.ceil(n / group)
    if datapath in INT8_WEIGHTS:
        w_bits, w_cols, term_bits = 8, n, signed_bits(128 * 128)
    elif datapath == "ternary":
        w_bits, w_cols, term_bits = 2, n, signed_bits(128)
    else:
        idx_bits = clog2(len(base_patterns(group)))
        w_bits, w_cols, term_bits = idx_bits + 1, ngroups, signed_bits(128 * group)
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
        # The shared part: per group, every stored pattern's partial sum, computed once.
        pats = base_patterns(group)
        for g in range(ngroups):
            for k, ws in enumerate(pats[1:], start=1):
                parts = [
                    ("+" if w > 0 else "-")
                    + f"$signed({{{{{term_bits - ACT_BITS}{{a_{c}[7]}}}}, a_{c}}})"
                    for w, c in zip(ws, range(g * group, g * group + group), strict=True)
                    if w and c < n
                ]
                expr = " ".join(parts).lstrip("+") if parts else f"{term_bits}'sd0"
                body.append(f"  wire signed [{term_bits - 1}:0] t_{g}_{k} = {expr};")

    width = term_bits
    for r in range(m):
        terms: list[str] = []
        cins: list[str] = []
        if datapath == "mac8":
            for c in range(n):
                body.append(f"  wire signed [{term_bits - 1}:0] p_{r}_{c};")
                body.append(f"  {MUL} u_{r}_{c} (.w(w_{r}_{c}), .a(a_{c}), .p(p_{r}_{c}));")
                terms.append(f"p_{r}_{c}")
        elif datapath == "ternary":
            # -a = ~a + 1: a term is (a XOR neg) gated by nonzero, and the "+1" of each
            # negated term rides on an adder's carry-in.  A tree has one adder fewer than
            # terms, so term 0 negates explicitly.
            for c in range(n):
                w, a = f"w_{r}_{c}", f"a_{c}"
                ext = f"{{{a}[7], {a}}}"
                if c == 0:
                    neg = ext if bug else f"-{ext}"
                    expr = f"{w} == 2'b01 ? {ext} : ({w} == 2'b11 ? {neg} : {term_bits}'sd0)"
                else:
                    nbit = "1'b0" if bug else f"{w}[1] & {w}[0]"
                    body.append(f"  wire n_{r}_{c} = {nbit};")
                    cins.append(f"n_{r}_{c}")
                    expr = f"{w}[0] ? ({ext} ^ {{{term_bits}{{n_{r}_{c}}}}}) : {term_bits}'sd0"
                body.append(f"  wire signed [{term_bits - 1}:0] p_{r}_{c} = {expr};")
                terms.append(f"p_{r}_{c}")
        elif datapath == "mac8-bw":
            # Bit plane j: sum over c of (w[j] ? a : 0), an 8-bit-term tree; then
            # y = sum_{j<7} P_j * 2^j - P_7 * 2^7, combined at the output width of mac8.
            planes = []
            for j in range(8):
                pterms = []
                for c in range(n):
                    name = f"q_{r}_{j}_{c}"
                    body.append(
                        f"  wire signed [{ACT_BITS - 1}:0] {name} = w_{r}_{c}[{j}] ? a_{c} : 8'sd0;"
                    )
                    pterms.append(name)
                plane, pw = _tree(body, f"b_{r}_{j}", pterms, ACT_BITS)
                planes.append((plane, pw))
            out_w = term_bits + clog2(n)
            parts = []
            for j, (plane, pw) in enumerate(planes):
                ext = f"$signed({{{{{out_w - pw}{{{plane}[{pw - 1}]}}}}, {plane}}})"
                sign = "+" if (j < 7 or bug) else "-"
                parts.append(f"{sign} ({ext} <<< {j})")
            body.append(f"  wire signed [{out_w - 1}:0] bw_{r} = {' '.join(parts).lstrip('+ ')};")
            terms.append(f"bw_{r}")
            term_bits_row = out_w
        else:
            # Per row and group: pick the stored entry by index, then negate it by the
            # sign bit (XOR here, the +1 on a tree adder's carry-in, as for ternary).
            pats, ib = base_patterns(group), w_bits - 1
            for g in range(ngroups):
                w, e, sgn = f"w_{r}_{g}", f"e_{r}_{g}", f"n_{r}_{g}"
                body.append(f"  reg signed [{term_bits - 1}:0] {e};")
                body.append("  always @* begin")
                body.append(f"    case ({w}[{ib - 1}:0])")
                body += [f"      {ib}'d{k}: {e} = t_{g}_{k};" for k in range(1, len(pats))]
                body.append(f"      default: {e} = {term_bits}'sd0;")
                body.append("    endcase")
                body.append("  end")
                sbit = "1'b0" if bug else f"{w}[{ib}]"
                body.append(f"  wire {sgn} = {sbit};")
                if g == 0:
                    expr = f"{sgn} ? -{e} : {e}"
                else:
                    cins.append(sgn)
                    expr = f"{e} ^ {{{term_bits}{{{sgn}}}}}"
                body.append(f"  wire signed [{term_bits - 1}:0] p_{r}_{g} = {expr};")
                terms.append(f"p_{r}_{g}")
        tb = term_bits_row if datapath == "mac8-bw" else term_bits
        s, width = _tree(body, f"s_{r}", terms, tb, cins)
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
    tail = ["endmodule", ""]
    if datapath == "mac8":
        wexpr = "$signed({1'b0, w[6:0]})" if bug else "w"
        tail += [
            "// One signed 8x8 multiplier; the fabric flows synthesize it once (hierarchy kept).",
            f"module {MUL} (input wire signed [7:0] w, input wire signed [7:0] a,",
            f"    output wire signed [{term_bits - 1}:0] p);",
            f"  assign p = {wexpr} * a;",
            "endmodule",
            "",
        ]
    verilog = "\n".join(header + body + tail)
    return Design(datapath, n, m, group, verilog, w_bits, k, sel_bits, width)


# --------------------------------------------------------------------- reference side


def random_weights(datapath: str, n: int, m: int, rng: random.Random) -> list[list[int]]:
    """Random weights in the datapath's domain: int8 for mac8(-bw), {-1,0,+1} otherwise."""
    if datapath in INT8_WEIGHTS:
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
        if design.datapath in INT8_WEIGHTS:
            out += [w & mask for w in row]
        elif design.datapath == "ternary":
            out += [{0: 0b00, 1: 0b01, -1: 0b11}[w] for w in row]
        else:
            g = design.group
            padded = row + [0] * (-len(row) % g)
            out += [table_code(padded[i : i + g]) for i in range(0, len(padded), g)]
    return out
