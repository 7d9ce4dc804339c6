"""Machine-checkable claims: a small condition language written as YAML data.

Why data and not Python expressions: a paper spec is reviewed like a paper. An `eval`
string could do anything and could not be checked before a run; these conditions are
checked against the JSON Schema (shape) and against the experiment's plan (metric
names, parameter values) before anything runs, then evaluated with pandas on the tidy
long table (one row per point and metric). A selection that matches no row — or
several rows without a stated aggregate — makes the claim an error, never a pass.

    selection  {metric, where: {param: value | [values]}, stat: median|mean|min|max|std|
                ci95_low|ci95_high (default median), agg: mean|median|min|max|sum
                (needed when several points match), experiment (if the paper has 2+)}
    threshold  {value: number, source: paper, ref: "the sentence or table"} |
               {value: number, source: ours, why: "why this bar, set before measuring"}
    expr       threshold | selection | {ratio: [expr, expr]} | {difference: [expr, expr]}
    check      exactly one of
      compare  {left: expr, op: < <= > >=, right: expr}
      within   {value: expr, rel_tol | abs_tol: threshold, target: threshold (default:
                the claim's paper.value, source paper)}
      trend    {metric, where, along: param, direction: increasing|decreasing,
                strict: bool, order: [values]}      one point per value of `along`
      ranking  {param, where, first: {metric}, second: {metric}, expect: same|differ}
      all / any  [check, ...]                        an error in any part is an error

    check:
      compare:
        left: {ratio: [{metric: tbt_p99_ms, where: {policy: prefill-first}},
                       {metric: tbt_p99_ms, where: {policy: chunked-256}}]}
        op: ">="
        right: {value: 3, source: ours, why: "a stall costs many decode iterations"}

A bare number where a threshold belongs is bad input (BadInput naming the file and
JSON path): every bar a verdict rests on says whether the paper or we set it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Any

from efflab.core.errors import BadInput
from efflab.results.tables import STAT_COLUMNS

Scalar = str | int | float | bool
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
PASS, FAIL, INCONCLUSIVE, ERROR = "pass", "fail", "inconclusive", "error"
SOURCES = ("paper", "ours")


@dataclass(frozen=True)
class Select:
    """One number from a table: `stat` of the row(s) with `metric` matching `where`."""

    experiment: str
    metric: str
    where: tuple[tuple[str, Scalar | tuple[Scalar, ...]], ...] = ()
    stat: str = "median"
    agg: str | None = None  # reduces several matching rows; without it they are an error
    path: str = "$"


@dataclass(frozen=True)
class Const:
    """A threshold or tolerance: its value, who set it (paper | ours) and the ref or why."""

    value: float
    source: str = "ours"
    basis: str = ""  # paper: the sentence or table; ours: why this bar
    path: str = "$"


@dataclass(frozen=True)
class Arith:
    op: str  # "ratio" | "difference"
    left: Expr
    right: Expr


Expr = Select | Const | Arith


@dataclass(frozen=True)
class Compare:
    left: Expr
    op: str
    right: Expr
    path: str


@dataclass(frozen=True)
class Within:
    """Agreement with the paper's number: |ours - target| within rel_tol or abs_tol."""

    value: Expr
    target: Const
    rel_tol: Const | None
    abs_tol: Const | None
    path: str


@dataclass(frozen=True)
class Trend:
    """`sel`'s metric is monotone along parameter `along` (other params fixed by where)."""

    sel: Select
    along: str
    direction: str  # "increasing" | "decreasing"
    strict: bool
    order: tuple[Scalar, ...] | None
    path: str


@dataclass(frozen=True)
class Ranking:
    """Items (values of `param`) ordered by `first` vs by `second`: `same` or `differ`."""

    first: Select
    second: Select
    param: str
    expect: str
    path: str


@dataclass(frozen=True)
class Combine:
    kind: str  # "all" | "any"
    parts: tuple[Condition, ...]
    path: str


Condition = Compare | Within | Trend | Ranking | Combine


# ---------------------------------------------------------------- parsing (schema-valid input)


def parse(
    raw: dict[str, Any],
    path: str,
    experiments: list[str],
    file: Any,
    target: Const | None = None,
) -> Condition:
    """Schema-valid YAML -> Condition; `target` is the claim's paper value for `within`."""
    ((kind, body),) = raw.items()
    p = f"{path}.{kind}"
    if kind in ("all", "any"):
        parts = tuple(parse(c, f"{p}[{i}]", experiments, file, target) for i, c in enumerate(body))
        return Combine(kind, parts, p)
    if kind == "compare":
        return Compare(
            _expr(body["left"], f"{p}.left", experiments, file),
            body["op"],
            _expr(body["right"], f"{p}.right", experiments, file),
            p,
        )
    if kind == "within":
        tgt = threshold(body["target"], f"{p}.target") if "target" in body else target
        if tgt is None:
            raise BadInput(
                file, f"{p}.target", "a target threshold or the claim's paper.value", None
            )
        val = _expr(body["value"], f"{p}.value", experiments, file)
        tols = [
            threshold(body[t], f"{p}.{t}") if t in body else None for t in ("rel_tol", "abs_tol")
        ]
        return Within(val, tgt, tols[0], tols[1], p)
    if kind == "trend":
        order = tuple(body["order"]) if "order" in body else None
        sel = _select(body, p, experiments, file)
        return Trend(sel, body["along"], body["direction"], body.get("strict", False), order, p)
    if kind == "ranking":
        base = {k: body[k] for k in ("experiment", "where") if k in body}
        first = _select({**base, **body["first"]}, f"{p}.first", experiments, file)
        second = _select({**base, **body["second"]}, f"{p}.second", experiments, file)
        return Ranking(first, second, body["param"], body["expect"], p)
    raise BadInput(file, path, "one of compare, within, trend, ranking, all, any", kind)


def threshold(raw: dict[str, Any], path: str) -> Const:
    """A schema-valid threshold object -> Const (source and its ref/why kept)."""
    basis = raw.get("ref") if raw["source"] == "paper" else raw.get("why")
    return Const(float(raw["value"]), raw["source"], str(basis or ""), path)


THRESHOLD_EXPECTED = "a threshold object {value, source: paper, ref} or {value, source: ours, why}"


def bare_numbers(raw: Any, path: str) -> list[tuple[str, Any]]:
    """(JSON path, number) of every bare number where a threshold belongs in a raw check.

    Run before schema validation so the error names the exact place (a oneOf failure
    would not); tolerant of any other malformation, which the schema reports.
    """
    if not isinstance(raw, dict) or len(raw) != 1:
        return []
    ((kind, body),) = raw.items()
    p = f"{path}.{kind}"
    if kind in ("all", "any") and isinstance(body, list):
        return [x for i, c in enumerate(body) for x in bare_numbers(c, f"{p}[{i}]")]
    if not isinstance(body, dict):
        return []
    if kind == "compare":
        return _bare_expr(body.get("left"), f"{p}.left") + _bare_expr(
            body.get("right"), f"{p}.right"
        )
    if kind == "within":
        out = _bare_expr(body.get("value"), f"{p}.value")
        return out + [
            (f"{p}.{k}", body[k]) for k in ("target", "rel_tol", "abs_tol") if _num(body.get(k))
        ]
    return []


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _bare_expr(raw: Any, path: str) -> list[tuple[str, Any]]:
    if _num(raw):
        return [(path, raw)]
    if isinstance(raw, dict):
        for op in ("ratio", "difference"):
            if isinstance(raw.get(op), list):
                return [
                    x for i, e in enumerate(raw[op]) for x in _bare_expr(e, f"{path}.{op}[{i}]")
                ]
    return []


def _expr(raw: Any, path: str, experiments: list[str], file: Any) -> Expr:
    if "source" in raw and "value" in raw:
        return threshold(raw, path)
    for op in ("ratio", "difference"):
        if op in raw:
            a, b = raw[op]
            return Arith(
                op,
                _expr(a, f"{path}.{op}[0]", experiments, file),
                _expr(b, f"{path}.{op}[1]", experiments, file),
            )
    return _select(raw, path, experiments, file)


def _select(raw: dict[str, Any], path: str, experiments: list[str], file: Any) -> Select:
    exp = raw.get("experiment")
    if exp is None:
        if len(experiments) != 1:
            raise BadInput(
                file, f"{path}.experiment", f"one of {experiments} (the paper needs several)", None
            )
        exp = experiments[0]
    where = tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in (raw.get("where") or {}).items()
    )
    return Select(exp, raw["metric"], where, raw.get("stat", "median"), raw.get("agg"), path)


def thresholds(cond: Condition | Expr) -> list[Const]:
    """Every threshold and tolerance a condition uses, in spec order (for reports)."""
    if isinstance(cond, Const):
        return [cond]
    if isinstance(cond, Select):
        return []
    if isinstance(cond, Arith | Compare):
        return thresholds(cond.left) + thresholds(cond.right)
    if isinstance(cond, Within):
        tols = [t for t in (cond.rel_tol, cond.abs_tol) if t is not None]
        return thresholds(cond.value) + [cond.target, *tols]
    if isinstance(cond, Trend | Ranking):
        return []
    return [t for part in cond.parts for t in thresholds(part)]


def selections(cond: Condition | Expr) -> list[Select]:
    """Every selection a condition reads, in spec order (for checks and plots)."""
    if isinstance(cond, Select):
        return [cond]
    if isinstance(cond, Const):
        return []
    if isinstance(cond, Arith | Compare):
        return selections(cond.left) + selections(cond.right)
    if isinstance(cond, Within):
        return selections(cond.value)
    if isinstance(cond, Trend):
        return [cond.sel]
    if isinstance(cond, Ranking):
        return [cond.first, cond.second]
    return [s for part in cond.parts for s in selections(part)]


# ---------------------------------------------------------------- rendering


def fmt(v: float | None, unit: str | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    text = f"{v:.4g}"
    return f"{text} {unit}" if unit and unit not in ("ratio", "1", "") else text


def _where_text(where: tuple) -> str:
    return ", ".join(
        f"{k} in [{', '.join(map(str, v))}]" if isinstance(v, tuple) else f"{k}={v}"
        for k, v in where
    )


def render(c: Condition | Expr) -> str:
    """Human form, e.g. `median(tbt_p99_ms | policy=prefill-first) / median(...) >= 3`."""
    if isinstance(c, Select):
        w = _where_text(c.where)
        inner = f"{c.stat}({c.metric}{' | ' + w if w else ''})"
        return f"{c.agg} of {inner}" if c.agg else inner
    if isinstance(c, Const):
        return f"{c.value:g}"
    if isinstance(c, Arith):
        sym = " / " if c.op == "ratio" else " - "
        return sym.join(
            f"({render(x)})" if isinstance(x, Arith) else render(x) for x in (c.left, c.right)
        )
    if isinstance(c, Compare):
        return f"{render(c.left)} {c.op} {render(c.right)}"
    if isinstance(c, Within):
        tol = f"±{c.rel_tol.value:.0%}" if c.rel_tol is not None else f"±{c.abs_tol.value:g}"
        return f"{render(c.value)} within {tol} of {c.target.value:g}"
    if isinstance(c, Trend):
        strict = "strictly " if c.strict else ""
        return f"{render(c.sel)} {strict}{c.direction} along {c.along}"
    if isinstance(c, Ranking):
        return f"order of {c.param} by {render(c.first)} {'differs from' if c.expect == 'differ' else 'equals'} order by {render(c.second)}"
    joiner = " and " if c.kind == "all" else " or "
    return joiner.join(f"({render(p)})" for p in c.parts)


# ---------------------------------------------------------------- values


def param_column(name: str) -> str:
    """Table column of a parameter: names that collide with statistics get `param_`."""
    return f"param_{name}" if name in STAT_COLUMNS else name


def is_num(v: Any) -> bool:
    return (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        or (hasattr(v, "dtype") and getattr(v.dtype, "kind", "") in "iuf")
    )


def same_value(x: Any, want: Any) -> bool:
    """Parameter equality across YAML/parquet types: 0.9 == 0.9, 64 == 64.0, 'a' == 'a'."""
    if is_num(x) and is_num(want):
        return math.isclose(float(x), float(want), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(x, float) and math.isnan(x):
        return False
    return bool(x == want) and (is_num(x) == is_num(want))
