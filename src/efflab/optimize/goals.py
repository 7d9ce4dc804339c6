"""What an optimisation asks for: objectives (`M:min|max`) and constraints (`M>=X`).

Parsed once, from the command line or an experiment's `optimize:` block, into typed
values; a malformed one is a BadInput naming the option (or the YAML path), so a
typo never starts a long search.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput

DIRECTIONS = {"min": "minimize", "max": "maximize", "minimize": "minimize", "maximize": "maximize"}
CONSTRAINT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # minimize | maximize

    def text(self) -> str:
        return f"{self.metric}:{'min' if self.direction == 'minimize' else 'max'}"


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str  # <= >= < >
    value: float

    def violation(self, measured: float) -> float:
        """Optuna's convention: <= 0 feasible, > 0 by how much it is violated."""
        gap = self.value - measured if self.op in (">=", ">") else measured - self.value
        if gap == 0 and self.op in ("<", ">"):
            return math.ulp(abs(self.value)) or 1e-300  # strict bound: equality violates
        return gap

    def holds(self, measured: float) -> bool:
        return self.violation(measured) <= 0

    def text(self) -> str:
        return f"{self.metric}{self.op}{self.value:g}"


def parse_objective(text: Any, source: str | Path, where: str) -> Objective:
    """`latency_p50_us:min` (also `:max`, `:minimize`, `:maximize`)."""
    if isinstance(text, dict):  # YAML form {metric: M, direction: min}
        text = f"{text.get('metric')}:{text.get('direction')}"
    if not isinstance(text, str) or text.count(":") != 1:
        raise BadInput(source, where, "METRIC:min or METRIC:max", text)
    metric, direction = (s.strip() for s in text.split(":"))
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", metric) or direction not in DIRECTIONS:
        raise BadInput(source, where, "METRIC:min or METRIC:max", text)
    return Objective(metric, DIRECTIONS[direction])


def parse_constraint(text: Any, source: str | Path, where: str) -> Constraint:
    """`accuracy>=0.97`, `tbt_p99_ms<50` (operators <=, >=, <, >)."""
    if isinstance(text, dict):  # YAML form {metric: M, op: ">=", value: X}
        text = f"{text.get('metric')}{text.get('op')}{text.get('value')}"
    m = CONSTRAINT_RE.match(text) if isinstance(text, str) else None
    expected = "METRIC>=NUMBER or METRIC<=NUMBER (also > and <)"
    if not m:
        raise BadInput(source, where, expected, text)
    try:
        value = float(m.group(3))
    except ValueError:
        raise BadInput(source, where, expected, text) from None
    if not math.isfinite(value):
        raise BadInput(source, where, "a finite bound", text)
    return Constraint(m.group(1), m.group(2), value)


def check_metrics(
    objectives: list[Objective],
    constraints: list[Constraint],
    declared: dict[str, Any],
    alias: str,
    sources: dict[str, tuple[str | Path, str]],
) -> None:
    """Every objective and constraint names a metric the measured script declares."""
    known = ", ".join(sorted(declared))
    for i, o in enumerate(objectives):
        if o.metric not in declared:
            src, where = sources.get(f"objective:{i}", ("--objective", f"$[{i}]"))
            raise BadInput(src, where, f"a metric of '{alias}' ({known})", o.metric)
    for i, c in enumerate(constraints):
        if c.metric not in declared:
            src, where = sources.get(f"constraint:{i}", ("--constraint", f"$[{i}]"))
            raise BadInput(src, where, f"a metric of '{alias}' ({known})", c.metric)
    seen = [o.metric for o in objectives]
    if len(set(seen)) != len(seen):
        raise BadInput("--objective", "$", "each metric at most once", seen)
