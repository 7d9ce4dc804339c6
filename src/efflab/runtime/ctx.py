"""What a script's `run(ctx)` receives: validated inputs, deps' outputs, a private
output folder, a logger, a timer and the energy meter. No global mutable state.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.runtime.energy import EnergyMeter


class BadInput(ValueError):
    """Raised by a script for an impossible parameter combination found at run time."""

    def __init__(self, fld: str, expected: str, found: Any = None):
        super().__init__(f"input '{fld}': expected {expected}, found {found!r}")
        self.field, self.expected, self.found = fld, expected, found


@dataclass
class DepOutputs:
    """Outputs of one dependency invocation, as the dependent script sees them."""

    metrics: dict[str, Any]
    files: dict[str, Path]
    values: dict[str, Any]
    key: str = ""
    alias: str = ""


@dataclass
class Context:
    inputs: dict[str, Any]
    out_dir: Path
    deps: dict[str, DepOutputs] = field(default_factory=dict)
    repetition: int = 0
    script_dir: Path = Path(".")
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("efflab.script"))
    energy: EnergyMeter = field(default_factory=EnergyMeter)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return int(self.inputs.get("seed", 0))

    @contextmanager
    def timer(self, name: str):
        """Accumulates wall seconds under `name`; reported in outputs.json timings."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
