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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from efflab.core.errors import BadInput
from efflab.papers import kinds
from efflab.results.tables import STAT_COLUMNS

Scalar = str | int | float | bool
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
PASS, FAIL, INCONCLUSIVE, ERROR = "pass", "fail", "inconclusive", "error"
NOT_APPLICABLE = "not-applicable"  # the machine lacks what the claim requires
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


Condition = Any  # one of the dataclasses of efflab.papers.kinds (each kind its module)


# ---------------------------------------------------------------- conditions (one kind per module)


@dataclass(frozen=True)
class Context:
    """What parsing a condition needs besides its YAML: the paper's experiments, the
    file (for BadInput) and the claim's paper value (the default target of `within`)."""

    experiments: list[str]
    file: Any
    target: Const | None = None


def parse(
    raw: dict[str, Any],
    path: str,
    experiments: list[str],
    file: Any,
    target: Const | None = None,
) -> Condition:
    """Schema-valid YAML -> Condition, by the kind its one key names."""
    return kinds.parse(raw, path, Context(experiments, file, target))


def thresholds(cond: Condition | Expr) -> list[Const]:
    """Every threshold and tolerance a condition uses, in spec order (for reports)."""
    if isinstance(cond, Const):
        return [cond]
    if isinstance(cond, Select):
        return []
    if isinstance(cond, Arith):
        return thresholds(cond.left) + thresholds(cond.right)
    return kinds.of(cond).thresholds(cond)


def selections(cond: Condition | Expr) -> list[Select]:
    """Every selection a condition reads, in spec order (for checks and plots)."""
    if isinstance(cond, Select):
        return [cond]
    if isinstance(cond, Const):
        return []
    if isinstance(cond, Arith):
        return selections(cond.left) + selections(cond.right)
    return kinds.of(cond).selections(cond)


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
    return kinds.of(c).render(c)


def rewrite(c: Condition | Expr, f: Callable[[Select], Select]) -> Any:
    """The same condition with every selection passed through `f` (controls, placebos)."""
    if isinstance(c, Select):
        return f(c)
    if isinstance(c, Const):
        return c
    if isinstance(c, Arith):
        return Arith(c.op, rewrite(c.left, f), rewrite(c.right, f))
    return kinds.of(c).rewrite(c, f)


# ---------------------------------------------------------------- expressions


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
    ((name, body),) = raw.items()
    kind = kinds.registry().get(name)
    return [] if kind is None else kind.bare_numbers(body, f"{path}.{name}")


def is_bare(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def bare_expr(raw: Any, path: str) -> list[tuple[str, Any]]:
    """Bare numbers inside a raw expression (see bare_numbers)."""
    if is_bare(raw):
        return [(path, raw)]
    if isinstance(raw, dict):
        for op in ("ratio", "difference"):
            if isinstance(raw.get(op), list):
                return [x for i, e in enumerate(raw[op]) for x in bare_expr(e, f"{path}.{op}[{i}]")]
    return []


def expr(raw: Any, path: str, ctx: Context) -> Expr:
    """A schema-valid expression -> Const | Select | Arith."""
    if "source" in raw and "value" in raw:
        return threshold(raw, path)
    for op in ("ratio", "difference"):
        if op in raw:
            a, b = raw[op]
            return Arith(op, expr(a, f"{path}.{op}[0]", ctx), expr(b, f"{path}.{op}[1]", ctx))
    return select(raw, path, ctx)


def select(raw: dict[str, Any], path: str, ctx: Context) -> Select:
    """A schema-valid selection -> Select (the experiment defaults to the paper's only one)."""
    exp = raw.get("experiment")
    if exp is None:
        if len(ctx.experiments) != 1:
            raise BadInput(
                ctx.file,
                f"{path}.experiment",
                f"one of {ctx.experiments} (the paper needs several)",
                None,
            )
        exp = ctx.experiments[0]
    where = tuple(
        (k, tuple(v) if isinstance(v, list) else v) for k, v in (raw.get("where") or {}).items()
    )
    return Select(exp, raw["metric"], where, raw.get("stat", "median"), raw.get("agg"), path)


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
