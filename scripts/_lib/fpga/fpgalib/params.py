"""Pure parameter rules shared by the FPGA scripts' ``check.py`` and ``run.py``.

Import-free on purpose (only the standard library, no tools): the planner calls
``check`` for every point before anything runs, so an unknown datapath, a zero size or
a device/package pair that nextpnr would reject fails in milliseconds with exit 2,
not after yosys has burnt a minute.  The meta.yaml schemas carry the same enums and
patterns; repeating them here keeps ``run.py`` safe when called on unvalidated inputs.
"""

from __future__ import annotations

import re

DATAPATHS = ("mac8", "mac8-bw", "ternary", "table-lookup")
INT8_WEIGHTS = ("mac8", "mac8-bw")  # datapaths whose weights are int8 (the others ternary)

# iCE40 parts nextpnr-ice40 knows, with their logic-cell count and the packages the
# chip database ships (a subset: the common ones).  The count lets a report say how
# far a design that does not fit overshoots.
DEVICES: dict[str, dict] = {
    "lp384": {"lcs": 384, "packages": ("qn32", "cm36", "cm49")},
    "lp1k": {
        "lcs": 1280,
        "packages": ("swg16tr", "cm36", "cm49", "cm81", "cm121", "qn84", "cb81", "cb121"),
    },
    "hx1k": {"lcs": 1280, "packages": ("vq100", "cb132", "tq144")},
    "lp8k": {
        "lcs": 7680,
        "packages": ("cm81", "cm81:4k", "cm121", "cm121:4k", "cm225", "cm225:4k"),
    },
    "hx8k": {
        "lcs": 7680,
        "packages": ("cb132", "cb132:4k", "tq144:4k", "cm225", "ct256", "bg121", "bg121:4k"),
    },
    "up5k": {"lcs": 5280, "packages": ("sg48", "uwg30")},
}

MAX_CELLS = 4096  # N*M beyond this makes a single generate/simulate step take minutes
MAX_GROUP = 4  # 3**4 = 81 table entries per group; larger tables are pointless here
SIZE_RE = re.compile(r"^([1-9][0-9]{0,3})x([1-9][0-9]{0,3})$")


def _is_int(value: object) -> bool:
    """True for real integers; bool is excluded because ``True`` would pass as 1."""
    return isinstance(value, int) and not isinstance(value, bool)


def parse_size(size: str) -> tuple[int, int]:
    """``"8x16"`` -> ``(8, 16)`` = (N activations/inputs, M output rows)."""
    m = SIZE_RE.match(size) if isinstance(size, str) else None
    if not m:
        raise ValueError(f"size must look like '<inputs>x<rows>' with both >= 1, got {size!r}")
    return int(m.group(1)), int(m.group(2))


def check(inputs: dict) -> list[tuple[str, str, object]]:
    """Return ``(field, expected, found)`` for every impossible input combination."""
    problems: list[tuple[str, str, object]] = []
    if "datapath" in inputs and inputs["datapath"] not in DATAPATHS:
        problems.append(("datapath", f"one of {list(DATAPATHS)}", inputs["datapath"]))

    n = m = None
    if "size" in inputs:
        try:
            n, m = parse_size(inputs["size"])
        except ValueError:
            problems.append(
                ("size", "'<inputs>x<rows>', both integers >= 1 (e.g. '8x16')", inputs["size"])
            )
    if n is not None and m is not None and n * m > MAX_CELLS:
        problems.append(("size", f"inputs*rows <= {MAX_CELLS}", inputs["size"]))

    group = inputs.get("group", 2)
    if "group" in inputs and not (_is_int(group) and 1 <= group <= MAX_GROUP):
        problems.append(("group", f"integer in [1, {MAX_GROUP}]", group))

    for name in ("vectors",):
        if name in inputs and not (_is_int(inputs[name]) and inputs[name] >= 1):
            problems.append((name, "integer >= 1", inputs[name]))
    if "seed" in inputs and not (_is_int(inputs["seed"]) and inputs["seed"] >= 0):
        problems.append(("seed", "integer >= 0", inputs["seed"]))

    device = inputs.get("device")
    if "device" in inputs and device not in DEVICES:
        problems.append(("device", f"one of {sorted(DEVICES)}", device))
    elif (
        "package" in inputs
        and device in DEVICES
        and inputs["package"] not in DEVICES[device]["packages"]
    ):
        problems.append(
            (
                "package",
                f"a {device} package: {list(DEVICES[device]['packages'])}",
                inputs["package"],
            )
        )
    return problems


def raise_on_problems(problems: list[tuple[str, str, object]]) -> None:
    """Raise the framework's BadInput for the first problem (ValueError if efflab is absent)."""
    if not problems:
        return
    field, expected, found = problems[0]
    try:
        from efflab.runtime.ctx import BadInput  # type: ignore[import-not-found]
    except ImportError:  # framework not installed (unit tests, standalone use)
        raise ValueError(f"bad input {field}: expected {expected}, found {found!r}") from None
    raise BadInput(field, expected, found)
