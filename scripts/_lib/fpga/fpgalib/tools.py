"""Locating the external EDA tools, with an error that says how to install them.

Why: a missing yosys otherwise surfaces as ``FileNotFoundError: 'yosys'`` deep in a
subprocess call; the failed record should instead name the tool and the command that
fixes it.
"""

from __future__ import annotations

import shutil

INSTALL = "apt-get install -y yosys nextpnr-ice40 fpga-icestorm iverilog"
PACKAGE = {
    "yosys": "yosys",
    "nextpnr-ice40": "nextpnr-ice40",
    "iverilog": "iverilog",
    "vvp": "iverilog",
    "icepack": "fpga-icestorm",
}


class ToolMissing(RuntimeError):
    """A required EDA executable is not on PATH."""


def require(tool: str) -> str:
    """Absolute path of ``tool`` or :class:`ToolMissing` naming it and the install command."""
    path = shutil.which(tool)
    if path is None:
        pkg = PACKAGE.get(tool, tool)
        raise ToolMissing(
            f"required tool '{tool}' (Debian package {pkg}) is not on PATH; install the FPGA toolchain with: {INSTALL}"
        )
    return path
