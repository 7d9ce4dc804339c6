"""The search space: which inputs vary, over which values, as Optuna distributions.

By default the space is the experiment's grid axes, each widened to what its input's
JSON Schema allows (an enum becomes a categorical, a boolean both values, a bounded
integer or number its range); an axis whose schema is open (a pattern, no bounds)
keeps its grid values. A `search:` block (experiment YAML, or `--search` on the
command line) adds inputs or narrows them: a list is a categorical, `{low, high,
step, log}` (or `"LOW..HIGH[:log]"`) a range. Every value and bound must lie inside
the input's schema; otherwise a BadInput names the option and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from efflab.core.errors import BadInput


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # categorical | int | float
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    def distribution(self) -> BaseDistribution:
        if self.kind == "categorical":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(
                int(self.low), int(self.high), log=self.log, step=int(self.step or 1)
            )
        return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)

    def size(self) -> float:
        """How many distinct values (inf for a continuous range)."""
        if self.kind == "categorical":
            return len(self.choices)
        if self.kind == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        return float("inf") if self.step is None else int((self.high - self.low) / self.step) + 1

    def describe(self) -> str:
        if self.kind == "categorical":
            return "{" + ", ".join(map(str, self.choices)) + "}"
        extra = (f" step {self.step:g}" if self.step else "") + (" log" if self.log else "")
        return f"[{self.low:g}, {self.high:g}]{extra}"

    def to_json(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"name": self.name, "kind": self.kind, "choices": list(self.choices)}
        return {
            "name": self.name,
            "kind": self.kind,
            "low": self.low,
            "high": self.high,
            "step": self.step,
            "log": self.log,
        }


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {p.name: p.distribution() for p in self.params}

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def size(self) -> float:
        n = 1.0
        for p in self.params:
            n *= p.size()
        return n

    def to_json(self) -> list[dict[str, Any]]:
        return [p.to_json() for p in self.params]


@dataclass(frozen=True)
class Source:
    """Where a search entry came from, for error messages: a file + JSON path prefix,
    or an option name (`--search`)."""

    file: str | Path
    prefix: str  # "$.search" or "$"


def parse_cli_search(items: list[str] | None) -> dict[str, Any]:
    """`--search NAME=SPEC` (repeatable): `1..8`, `1e-4..1e-2:log`, `fp32,int8-static`."""
    out: dict[str, Any] = {}
    for i, item in enumerate(items or []):
        if "=" not in item:
            raise BadInput("--search", f"$[{i}]", "NAME=LOW..HIGH[:log] or NAME=V1,V2,...", item)
        name, spec = (s.strip() for s in item.split("=", 1))
        if ".." in spec:
            out[name] = spec
        else:
            out[name] = [_scalar(v) for v in spec.split(",") if v.strip() != ""]
    return out


def _scalar(text: str) -> Any:
    try:
        v = yaml.safe_load(text)
    except yaml.YAMLError:
        return text.strip()
    return v if isinstance(v, str | int | float | bool) else text.strip()


def _range_of(spec: Any, src: Source, name: str) -> dict[str, Any]:
    where = f"{src.prefix}.{name}" if src.prefix != "$" else f"$.{name}"
    form = "LOW..HIGH[:log] or {low, high, step, log}"
    if isinstance(spec, str):
        body, _, flag = spec.partition(":")
        lo, sep, hi = body.partition("..")
        if not sep or flag not in ("", "log"):
            raise BadInput(src.file, where, form, spec)
        try:
            return {"low": _num(lo), "high": _num(hi), "log": flag == "log", "step": None}
        except ValueError:
            raise BadInput(src.file, where, form, spec) from None
    if isinstance(spec, dict) and {"low", "high"} <= set(spec) <= {"low", "high", "step", "log"}:
        return {"step": None, "log": False, **spec}
    raise BadInput(src.file, where, form, spec)


def _num(text: str) -> int | float:
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        return float(t)


class SpaceBuilder:
    """Builds a Space from input schemas, grid axes and search entries."""

    def __init__(self, schemas: dict[str, dict[str, Any]], owner: str):
        self.schemas = schemas
        self.owner = owner  # "script 'edge-bench'" or "tournament 'edge-digits'"

    def _check(self, name: str, value: Any, file: str | Path, where: str) -> None:
        errs = list(jsonschema.Draft202012Validator(self.schemas[name]).iter_errors(value))
        if errs:
            raise BadInput(
                file,
                where,
                f"a value allowed for input '{name}' of {self.owner} ({errs[0].message})",
                value,
            )

    def _typed(self, name: str) -> str | None:
        t = self.schemas[name].get("type")
        return t if isinstance(t, str) else None

    def from_schema(self, name: str, grid_values: list[Any]) -> Param:
        s = self.schemas[name]
        if "enum" in s:
            return Param(name, "categorical", tuple(s["enum"]))
        t = self._typed(name)
        if t == "boolean":
            return Param(name, "categorical", (False, True))
        lo = s.get("minimum", s.get("exclusiveMinimum"))
        hi = s.get("maximum", s.get("exclusiveMaximum"))
        if t == "integer" and "minimum" in s and "maximum" in s:
            return Param(name, "int", low=int(s["minimum"]), high=int(s["maximum"]))
        if t == "number" and lo is not None and hi is not None and "exclusiveMinimum" not in s:
            if "exclusiveMaximum" not in s:
                return Param(name, "float", low=float(lo), high=float(hi))
        return Param(name, "categorical", tuple(grid_values))

    def entry(self, name: str, spec: Any, src: Source) -> Param:
        where = f"{src.prefix}.{name}" if src.prefix != "$" else f"$.{name}"
        if name not in self.schemas:
            raise BadInput(
                src.file,
                where,
                f"an input of {self.owner} ({', '.join(sorted(self.schemas))})",
                name,
                "unknown input",
            )
        if isinstance(spec, dict) and set(spec) == {"values"}:
            spec = spec["values"]
        if isinstance(spec, list):
            if not spec:
                raise BadInput(src.file, where, "at least one value", spec)
            for j, v in enumerate(spec):
                self._check(name, v, src.file, f"{where}[{j}]")
            return Param(name, "categorical", tuple(dict.fromkeys(spec)))
        r = _range_of(spec, src, name)
        t = self._typed(name)
        if t not in ("integer", "number"):
            raise BadInput(
                src.file, where, f"a list of values (input '{name}' is not a number)", spec
            )
        for k in ("low", "high"):
            v = r[k]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise BadInput(src.file, f"{where}.{k}", "a number", v)
            if t == "integer" and not float(v).is_integer():
                raise BadInput(src.file, f"{where}.{k}", f"a whole number (input '{name}')", v)
            self._check(name, int(v) if t == "integer" else v, src.file, f"{where}.{k}")
        if r["low"] >= r["high"]:
            raise BadInput(src.file, f"{where}.high", f"more than low ({r['low']})", r["high"])
        if r["log"] and r["low"] <= 0:
            raise BadInput(
                src.file, f"{where}.low", "a positive low bound for a log range", r["low"]
            )
        if r["step"] is not None and (isinstance(r["step"], bool) or not r["step"] > 0):
            raise BadInput(src.file, f"{where}.step", "a positive step", r["step"])
        if t == "integer":
            return Param(name, "int", low=int(r["low"]), high=int(r["high"]),
                         step=int(r["step"] or 1), log=bool(r["log"]))  # fmt: skip
        return Param(name, "float", low=float(r["low"]), high=float(r["high"]),
                     step=r["step"], log=bool(r["log"]))  # fmt: skip

    def build(
        self,
        grid: dict[str, list[Any]],
        searches: list[tuple[dict[str, Any], Source]],
        fixed: dict[str, Any],
    ) -> Space:
        """Grid axes from their schema, then each search block in order (later wins);
        inputs fixed with --set are not searched."""
        params: dict[str, Param] = {}
        for name, values in grid.items():
            if name in self.schemas:
                params[name] = self.from_schema(name, values)
        for block, src in searches:
            for name, spec in block.items():
                if name in fixed:
                    raise BadInput(
                        src.file,
                        f"{src.prefix}.{name}" if src.prefix != "$" else f"$.{name}",
                        "an input not also fixed with --set",
                        name,
                    )
                params[name] = self.entry(name, spec, src)
        if not params:
            raise BadInput(
                searches[-1][1].file if searches else "--search",
                "$",
                "at least one input to search (grid axes or a search: block)",
                "none",
            )
        return Space(tuple(params[n] for n in params))
