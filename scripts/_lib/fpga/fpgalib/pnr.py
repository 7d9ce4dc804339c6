"""nextpnr-ice40 place-and-route and the parsers for its JSON report and log.

Why a log parser as well as the report: when a design does not fit, nextpnr stops with
an error *before* writing ``--report``, yet the packer has already printed the
utilisation ("ICESTORM_LC: 31000/ 7680  403%").  "Does not fit" is a result worth
recording (fits=0 plus the demand), not a crash, so both sources are read.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from .tools import require

_UTIL_RE = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+(\d+)%", re.M)
_FMAX_RE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9.]+) MHz", re.M)
# Messages nextpnr prints when the packed design needs more of a resource than exists:
# too many logic cells ("no BELs remaining") or more I/Os than the package bonds out
# ("Unable to find a placement location for cell 'clk$sb_io'": the chip database counts
# every pad of the die, so the utilisation line alone does not reveal it).
_NOFIT_RE = re.compile(
    r"ERROR: (Unable to place cell .*no BELs remaining|Unable to find a placement location for cell|"
    r".*(?:not enough|exceeds|no more).*|"
    r"Design uses more .*|Failed to .*(?:place|legalis).*)",
    re.I,
)


class PnrError(RuntimeError):
    """nextpnr failed for a reason other than the design not fitting the device."""


def parse_log(text: str) -> dict:
    """Utilisation ``{bel: (used, available)}`` and the *last* Fmax per clock from a log.

    nextpnr prints Fmax twice (after placement and after routing); the routed one is last.
    """
    util = {name: (int(used), int(avail)) for name, used, avail, _ in _UTIL_RE.findall(text)}
    fmax: dict[str, float] = {}
    for clock, mhz in _FMAX_RE.findall(text):
        fmax[clock] = float(mhz)
    return {"utilization": util, "fmax": fmax}


def parse_report(report: dict) -> dict:
    """Same shape as :func:`parse_log` from nextpnr's ``--report`` JSON."""
    util = {
        k: (int(v["used"]), int(v["available"])) for k, v in report.get("utilization", {}).items()
    }
    fmax = {k: float(v["achieved"]) for k, v in report.get("fmax", {}).items()}
    return {"utilization": util, "fmax": fmax}


def overfull(util: dict[str, tuple[int, int]]) -> list[str]:
    """Resources whose demand exceeds what the device has (``used > available``)."""
    return [f"{k} {u}/{a}" for k, (u, a) in util.items() if u > a]


def place_and_route(
    netlist: Path,
    device: str,
    package: str,
    seed: int,
    workdir: Path,
    freq_mhz: float = 100.0,
    timeout_s: float = 1800,
) -> dict:
    """Run nextpnr-ice40 once; return fits, logic cells, Fmax and wall time.

    ``--timing-allow-fail`` makes a missed ``freq_mhz`` target a measurement (the
    achieved Fmax), not an error.  Raises :class:`PnrError` only for unexpected failures.
    """
    nextpnr = require("nextpnr-ice40")
    workdir.mkdir(parents=True, exist_ok=True)
    report, log = workdir / f"report_seed{seed}.json", workdir / f"nextpnr_seed{seed}.log"
    cmd = [
        nextpnr, f"--{device}", "--package", package, "--json", str(netlist),
        "--seed", str(seed), "--freq", str(freq_mhz), "--timing-allow-fail",
        "--report", str(report), "-q", "-l", str(log),
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    seconds = time.perf_counter() - t0
    text = log.read_text() if log.is_file() else proc.stdout + proc.stderr
    parsed = parse_log(text)
    if proc.returncode == 0 and report.is_file():
        parsed = parse_report(json.loads(report.read_text()))
    util = parsed["utilization"]
    over = overfull(util)
    lc_used, lc_avail = util.get("ICESTORM_LC", (None, None))
    result = {
        "seconds": seconds,
        "logic_cells": lc_used,
        "logic_cells_available": lc_avail,
        "utilization": {k: list(v) for k, v in util.items()},
        "command": " ".join(cmd),
    }
    if proc.returncode != 0:
        err = "\n".join(line for line in text.splitlines() if line.startswith("ERROR"))
        if over or _NOFIT_RE.search(text):
            return {
                **result,
                "fits": False,
                "fmax_mhz": None,
                "reason": err or f"over capacity: {over}",
            }
        raise PnrError(f"nextpnr-ice40 failed (rc={proc.returncode}): {err or text[-2000:]}")
    if not parsed["fmax"]:
        raise PnrError("nextpnr-ice40 finished but reported no clock Fmax")
    return {
        **result,
        "fits": True,
        "fmax_mhz": min(parsed["fmax"].values()),
        "fmax_by_clock": parsed["fmax"],
    }


def nextpnr_version() -> str:
    """``nextpnr-ice40 -- Next Generation Place and Route (Version ...)``."""
    proc = subprocess.run(
        [require("nextpnr-ice40"), "--version"], capture_output=True, text=True, timeout=30
    )
    return (proc.stdout or proc.stderr).strip()
