"""`compare: {left: expr, op: < <= > >=, right: expr}` — one statistic against another
or against a threshold; decided on the interval of left - right."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from efflab.papers import claims, controls, plancheck
from efflab.papers.bootstrap import Resolver, fmt_interval
from efflab.papers.claims import OPS, Arith, Const, Expr, bare_expr, expr, render
from efflab.papers.evaluate import Outcome, few, three_way
from efflab.papers.kinds import Kind
from efflab.papers.samples import Samples


@dataclass(frozen=True)
class Compare:
    left: Expr
    op: str
    right: Expr
    path: str


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["left", "op", "right"],
    "properties": {
        "left": {"$ref": "#/$defs/expr"},
        "op": {"enum": ["<", "<=", ">", ">="]},
        "right": {"$ref": "#/$defs/expr"},
    },
}


def parse(body: dict[str, Any], path: str, ctx: claims.Context) -> Compare:
    return Compare(
        expr(body["left"], f"{path}.left", ctx),
        body["op"],
        expr(body["right"], f"{path}.right", ctx),
        path,
    )


def evaluate(c: Compare, samples: Mapping[str, Samples], paired: bool) -> Outcome:
    r = Resolver(samples, paired)
    left, right = r.bind(c.left), r.bind(c.right)
    diff = r.bind(Arith("difference", c.left, c.right))
    lu, ru = r.unit(c.left), r.unit(c.right)
    est_l, est_r, est_d = r.estimate([left, right, diff], [lu, ru, lu or ru])
    status = three_way(lambda x: OPS[c.op](x, 0.0), est_d)
    ours = fmt_interval(est_l)
    if not isinstance(c.right, Const):
        ours += f" vs {fmt_interval(est_r)}"
    detail = (
        f"{render(c.left)} = {fmt_interval(est_l)}; {c.op} {fmt_interval(est_r)}; "
        f"difference {fmt_interval(est_d)} (95% interval){few(est_d)}"
    )
    return Outcome(status, ours, detail, est_l.value, est_l.low, est_l.high, est_d.n_min)


def _bare(body: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(body, dict):
        return []
    return bare_expr(body.get("left"), f"{path}.left") + bare_expr(
        body.get("right"), f"{path}.right"
    )


def _check(c: Compare, catalogs: dict[str, plancheck.Catalog], file: Any) -> None:
    for s in claims.selections(c):
        plancheck.check_select(s, catalogs, file)


KINDS = (
    Kind(
        name="compare",
        type=Compare,
        schema=SCHEMA,
        parse=parse,
        selections=lambda c: claims.selections(c.left) + claims.selections(c.right),
        thresholds=lambda c: claims.thresholds(c.left) + claims.thresholds(c.right),
        render=lambda c: f"{render(c.left)} {c.op} {render(c.right)}",
        check=_check,
        evaluate=evaluate,
        rewrite=lambda c, f: Compare(
            claims.rewrite(c.left, f), c.op, claims.rewrite(c.right, f), c.path
        ),
        placebos=lambda c, points: controls.arm_placebos(c),
        bare_numbers=_bare,
    ),
)
