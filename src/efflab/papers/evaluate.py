"""Evaluation of claim conditions (efflab.papers.claims) on tidy long tables, with pandas.

Why separate from the language: claims.py defines and checks what a spec may say
before anything runs; this module is where measured data meets a claim. Nothing here
passes by default: a selection with no rows, several rows without `agg`, a NaN or a
division by zero is an `error` Outcome, never a `pass`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from efflab.papers.claims import (
    ERROR,
    FAIL,
    OPS,
    PASS,
    Arith,
    Combine,
    Compare,
    Condition,
    Const,
    Expr,
    Ranking,
    Select,
    Trend,
    Within,
    fmt,
    is_num,
    param_column,
    render,
    same_value,
)


@dataclass
class Outcome:
    """Result of one condition: pass / fail / error, what we measured, and why."""

    status: str
    ours: str
    detail: str
    value: float | None = None


class EvalError(Exception):
    """The table cannot decide the claim (no rows, ambiguous rows, NaN, division by 0)."""


def rows(sel: Select, tables: Mapping[str, pd.DataFrame], extra: tuple = ()) -> pd.DataFrame:
    """Rows of the selection (where + extra conditions); empty is an error."""
    df = tables.get(sel.experiment)
    if df is None or df.empty:
        raise EvalError(f"experiment '{sel.experiment}' produced no table rows")
    mask = df["metric"] == sel.metric
    for k, v in (*sel.where, *extra):
        col = param_column(k)
        if col not in df.columns:
            raise EvalError(f"parameter '{k}' is not a column of the {sel.experiment} table")
        wants = v if isinstance(v, tuple) else (v,)
        mask &= df[col].map(lambda x, w=wants: any(same_value(x, y) for y in w)).astype(bool)
    out = df[mask]
    if out.empty:
        raise EvalError(f"{render(sel)} matches no row of the {sel.experiment} table")
    return out


def _value(sel: Select, tables: Mapping[str, pd.DataFrame]) -> tuple[float, str | None]:
    r = rows(sel, tables)
    if len(r) > 1 and sel.agg is None:
        raise EvalError(
            f"{render(sel)} matches {len(r)} rows; fix more parameters in `where` or set `agg`"
        )
    vals = r[sel.stat].astype(float)
    v = float(getattr(vals, sel.agg or "median")())
    if math.isnan(v):
        raise EvalError(f"{render(sel)} is NaN (n={int(r['n'].min())})")
    return v, str(r["unit"].iloc[0])


def value(e: Expr, tables: Mapping[str, pd.DataFrame]) -> tuple[float, str | None]:
    """Number and unit of an expression; ratios are unitless ('x')."""
    if isinstance(e, Const):
        return e.value, None
    if isinstance(e, Select):
        return _value(e, tables)
    a, ua = value(e.left, tables)
    b, ub = value(e.right, tables)
    if e.op == "ratio":
        if b == 0:
            raise EvalError(f"{render(e)}: division by zero")
        return a / b, "x"
    return a - b, ua or ub


def shown(e: Expr, tables: Mapping[str, pd.DataFrame]) -> str:
    """The measured side as a reader checks it: `0.94 - 0.01`, not a bare 0.93."""
    if isinstance(e, Arith) and e.op == "difference" and isinstance(e.right, Const):
        return f"{shown(e.left, tables)} - {e.right.value:g}"
    return fmt(*value(e, tables))


def evaluate(cond: Condition, tables: Mapping[str, pd.DataFrame]) -> Outcome:
    """Decide a condition on the tables; errors come back as an `error` Outcome."""
    try:
        if isinstance(cond, Combine):
            return _combine(cond, tables)
        return _EVAL[type(cond)](cond, tables)
    except EvalError as exc:
        return Outcome(ERROR, "—", str(exc))


def _compare(c: Compare, tables: Mapping[str, pd.DataFrame]) -> Outcome:
    a, ua = value(c.left, tables)
    b, ub = value(c.right, tables)
    ok = OPS[c.op](a, b)
    ours = shown(c.left, tables)
    if not isinstance(c.right, Const):
        ours += f" vs {shown(c.right, tables)}"
    detail = f"{render(c.left)} = {fmt(a, ua)}; {c.op} {fmt(b, ub)}: {'holds' if ok else 'does not hold'}"
    return Outcome(PASS if ok else FAIL, ours, detail, a)


def _within(c: Within, tables: Mapping[str, pd.DataFrame]) -> Outcome:
    v, unit = value(c.value, tables)
    tgt = c.target.value
    err = abs(v - tgt)
    ok = (c.abs_tol is not None and err <= c.abs_tol.value) or (
        c.rel_tol is not None and err <= c.rel_tol.value * abs(tgt)
    )
    rel = f" ({err / abs(tgt):.0%} off)" if tgt else ""
    detail = f"{render(c.value)} = {fmt(v, unit)} vs paper {tgt:g}{rel}"
    return Outcome(PASS if ok else FAIL, fmt(v, unit), detail, v)


def _by_param(sel: Select, param: str, tables: Mapping[str, pd.DataFrame]) -> dict[Any, float]:
    """One value per distinct `param` value among the selection's rows."""
    r = rows(sel, tables)
    col = param_column(param)
    if col not in r.columns:
        raise EvalError(f"parameter '{param}' is not a column of the {sel.experiment} table")
    out: dict[Any, float] = {}
    for key, g in r.groupby(col, sort=False, dropna=False):
        if len(g) > 1 and sel.agg is None:
            raise EvalError(
                f"{render(sel)} has {len(g)} rows for {param}={key}; fix more parameters"
            )
        out[key] = float(getattr(g[sel.stat].astype(float), sel.agg or "median")())
    if len(out) < 2:
        raise EvalError(f"{render(sel)} has {len(out)} value(s) of {param}; a trend needs 2+")
    return out


def _natural(keys: list[Any]) -> list[Any]:
    return sorted(keys, key=lambda k: (0, float(k), "") if is_num(k) else (1, 0.0, str(k)))


def _trend(c: Trend, tables: Mapping[str, pd.DataFrame]) -> Outcome:
    vals = _by_param(c.sel, c.along, tables)
    if c.order is not None:
        keys = []
        for o in c.order:
            match = [k for k in vals if same_value(k, o)]
            if not match:
                raise EvalError(f"{render(c.sel)} has no row for {c.along}={o}")
            keys.append(match[0])
    else:
        keys = _natural(list(vals))
    seq = [vals[k] for k in keys]
    cmp = {
        ("increasing", True): operator.lt,
        ("increasing", False): operator.le,
        ("decreasing", True): operator.gt,
        ("decreasing", False): operator.ge,
    }[(c.direction, c.strict)]
    ok = all(cmp(a, b) for a, b in zip(seq, seq[1:], strict=False))
    ours = " → ".join(fmt(v) for v in seq)
    detail = f"{c.along} = {' → '.join(map(str, keys))}: {ours}"
    return Outcome(PASS if ok else FAIL, ours, detail)


def _ranking(c: Ranking, tables: Mapping[str, pd.DataFrame]) -> Outcome:
    a = _by_param(c.first, c.param, tables)
    b = _by_param(c.second, c.param, tables)
    if set(map(str, a)) != set(map(str, b)):
        raise EvalError(f"{c.param} values differ between {c.first.metric} and {c.second.metric}")
    order_a = sorted(a, key=lambda k: a[k])
    order_b = sorted(b, key=lambda k: b[k])
    same = list(map(str, order_a)) == list(map(str, order_b))
    ok = same if c.expect == "same" else not same
    ours = f"by {c.first.metric}: {' < '.join(map(str, order_a))}; by {c.second.metric}: {' < '.join(map(str, order_b))}"
    return Outcome(PASS if ok else FAIL, ours, ours)


def _combine(c: Combine, tables: Mapping[str, pd.DataFrame]) -> Outcome:
    outs = [evaluate(p, tables) for p in c.parts]
    ours = "; ".join(dict.fromkeys(o.ours for o in outs))  # a range states its value once
    detail = "; ".join(f"[{o.status}] {o.detail}" for o in outs)
    if any(o.status == ERROR for o in outs):  # a broken part never hides behind `any`
        return Outcome(ERROR, ours, detail)
    hit = [o.status == PASS for o in outs]
    ok = all(hit) if c.kind == "all" else any(hit)
    return Outcome(PASS if ok else FAIL, ours, detail)


_EVAL = {Compare: _compare, Within: _within, Trend: _trend, Ranking: _ranking}
