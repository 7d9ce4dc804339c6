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
    expr       number | selection | {ratio: [expr, expr]} | {difference: [expr, expr]}
    check      exactly one of
      compare  {left: expr, op: < <= > >=, right: expr}
      within   {value: expr, rel_tol | abs_tol, target (default: the claim's paper.value)}
      trend    {metric, where, along: param, direction: increasing|decreasing,
                strict: bool, order: [values]}      one point per value of `along`
      ranking  {param, where, first: {metric}, second: {metric}, expect: same|differ}
      all / any  [check, ...]                        an error in any part is an error

    check:
      compare:
        left: {ratio: [{metric: tbt_p99_ms, where: {policy: prefill-first}},
                       {metric: tbt_p99_ms, where: {policy: chunked-256}}]}
        op: ">="
        right: 3
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
PASS, FAIL, ERROR = "pass", "fail", "error"


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
    value: float


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
    target: float
    rel_tol: float | None
    abs_tol: float | None
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
    raw: dict[str, Any], path: str, experiments: list[str], file: Any, target: float | None = None
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
        tgt = body.get("target", target)
        if tgt is None:
            raise BadInput(file, f"{p}.target", "a target number or the claim's paper.value", None)
        val = _expr(body["value"], f"{p}.value", experiments, file)
        return Within(val, float(tgt), body.get("rel_tol"), body.get("abs_tol"), p)
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


def _expr(raw: Any, path: str, experiments: list[str], file: Any) -> Expr:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return Const(float(raw))
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
        tol = f"±{c.rel_tol:.0%}" if c.rel_tol is not None else f"±{c.abs_tol:g}"
        return f"{render(c.value)} within {tol} of {c.target:g}"
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


# ---------------------------------------------------------------- plan-time checks


@dataclass
class Catalog:
    """What an experiment's table can hold, known from its plan before anything runs."""

    experiment: str
    metrics: list[str]
    params: list[str]
    points: list[dict[str, Any]]  # distinct parameter combinations of the plan


def _walk(cond: Condition) -> list[Condition]:
    if isinstance(cond, Combine):
        return [cond, *(c for p in cond.parts for c in _walk(p))]
    return [cond]


def check(cond: Condition, catalogs: dict[str, Catalog], file: Any) -> None:
    """Raise BadInput for whatever would make the claim an error once the table exists.

    Unknown experiment, metric or parameter; a value the grid never takes; a `where`
    that matches no planned point, or several without `agg`; a trend or ranking axis
    with fewer than two values.
    """
    for c in _walk(cond):
        if isinstance(c, Trend):
            _check_select(c.sel, catalogs, file, c.along, f"{c.path}.along")
            if c.order is not None:
                known = _values(catalogs[c.sel.experiment].points, c.along)
                for i, o in enumerate(c.order):
                    if not any(same_value(k, o) for k in known):
                        raise BadInput(file, f"{c.path}.order[{i}]", f"one of {known}", o)
        elif isinstance(c, Ranking):
            for s in (c.first, c.second):
                _check_select(s, catalogs, file, c.param, f"{c.path}.param")
        elif not isinstance(c, Combine):
            for s in selections(c):
                _check_select(s, catalogs, file)


def _values(points: list[dict[str, Any]], param: str) -> list[Any]:
    out: list[Any] = []
    for pt in points:
        if param in pt and not any(same_value(pt[param], v) for v in out):
            out.append(pt[param])
    return out


def _check_select(
    s: Select, catalogs: dict[str, Catalog], file: Any, free: str | None = None, free_path: str = ""
) -> None:
    cat = catalogs.get(s.experiment)
    if cat is None:
        raise BadInput(
            file,
            f"{s.path}.experiment",
            f"one of the paper's experiments {list(catalogs)}",
            s.experiment,
        )
    if s.metric not in cat.metrics:
        raise BadInput(
            file,
            f"{s.path}.metric",
            f"a metric of experiment '{cat.experiment}' ({', '.join(cat.metrics)})",
            s.metric,
        )
    for k, v in s.where:
        if k not in cat.params or k == free:
            expected = f"a parameter of '{cat.experiment}' ({', '.join(cat.params) or 'none'})"
            if k == free:
                expected = f"a parameter other than the compared axis '{free}'"
            raise BadInput(file, f"{s.path}.where.{k}", expected, k)
        known = _values(cat.points, k)
        for i, want in enumerate(v if isinstance(v, tuple) else (v,)):
            if not any(same_value(x, want) for x in known):
                sub = f"[{i}]" if isinstance(v, tuple) else ""
                raise BadInput(
                    file, f"{s.path}.where.{k}{sub}", f"a value of {k} in the plan {known}", want
                )
    match = [
        pt
        for pt in cat.points
        if all(
            k in pt and any(same_value(pt[k], w) for w in (v if isinstance(v, tuple) else (v,)))
            for k, v in s.where
        )
    ]
    if not match:
        raise BadInput(file, f"{s.path}.where", "a combination the plan contains", dict(s.where))
    if free is not None:
        if free not in cat.params:
            raise BadInput(
                file,
                free_path,
                f"a parameter of '{cat.experiment}' ({', '.join(cat.params)})",
                free,
            )
        if len(_values(match, free)) < 2:
            raise BadInput(file, free_path, f"2+ planned values of '{free}'", _values(match, free))
    per: dict[str, list[dict[str, Any]]] = {}  # points per value of the free axis
    for pt in match:
        per.setdefault(repr(pt.get(free)) if free else "", []).append(pt)
    crowded = [g for g in per.values() if len(g) > 1]
    if crowded and s.agg is None:
        varying = sorted(
            {k for pt in crowded[0] for k in pt if k != free and pt[k] != crowded[0][0].get(k)}
        )
        raise BadInput(
            file,
            f"{s.path}.where",
            f"parameters that fix one point (or `agg`); these vary: {', '.join(varying)}",
            dict(s.where),
        )
