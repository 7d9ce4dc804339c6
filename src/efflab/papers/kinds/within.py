"""`within: {value: expr, rel_tol | abs_tol: threshold, target: threshold}` — agreement
with the paper's number: |ours - target| within the tolerance (target defaults to the
claim's paper.value, source paper)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from efflab.core.errors import BadInput
from efflab.papers import claims, controls, plancheck
from efflab.papers.bootstrap import Resolver, fmt_interval
from efflab.papers.claims import FAIL, INCONCLUSIVE, Const, Expr, bare_expr, expr, is_bare, render
from efflab.papers.evaluate import Outcome, few, three_way, unsure
from efflab.papers.kinds import Kind
from efflab.papers.samples import Samples


@dataclass(frozen=True)
class Within:
    """Agreement with the paper's number: |ours - target| within rel_tol or abs_tol."""

    value: Expr
    target: Const
    rel_tol: Const | None
    abs_tol: Const | None
    path: str


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["value"],
    "anyOf": [{"required": ["rel_tol"]}, {"required": ["abs_tol"]}],
    "properties": {
        "value": {"$ref": "#/$defs/expr"},
        "target": {
            "$ref": "#/$defs/threshold",
            "description": "default: the claim's paper.value (source: paper, ref: paper.text)",
        },
        "rel_tol": {"$ref": "#/$defs/tolerance"},
        "abs_tol": {"$ref": "#/$defs/tolerance"},
    },
}


def parse(body: dict[str, Any], path: str, ctx: claims.Context) -> Within:
    tgt = claims.threshold(body["target"], f"{path}.target") if "target" in body else ctx.target
    if tgt is None:
        raise BadInput(
            ctx.file, f"{path}.target", "a target threshold or the claim's paper.value", None
        )
    val = expr(body["value"], f"{path}.value", ctx)
    tols = [
        claims.threshold(body[t], f"{path}.{t}") if t in body else None
        for t in ("rel_tol", "abs_tol")
    ]
    return Within(val, tgt, tols[0], tols[1], path)


def evaluate(c: Within, samples: Mapping[str, Samples], paired: bool) -> Outcome:
    r = Resolver(samples, paired)
    (est,) = r.estimate([r.bind(c.value)], [r.unit(c.value)])
    tgt = c.target.value
    tols = [c.abs_tol.value if c.abs_tol else 0.0, c.rel_tol.value * abs(tgt) if c.rel_tol else 0.0]
    tol = max(tols)
    lo_b, hi_b = tgt - tol, tgt + tol
    status = three_way(lambda x: lo_b <= x <= hi_b, est)
    if status == INCONCLUSIVE and (est.high < lo_b or est.low > hi_b):
        status = FAIL if not unsure(est) else INCONCLUSIVE
    elif status == FAIL and est.low < lo_b and est.high > hi_b:
        status = INCONCLUSIVE  # the interval spans the whole band: cannot say it misses
    off = f" ({abs(est.value - tgt) / abs(tgt):.0%} off)" if tgt else ""
    detail = (
        f"{render(c.value)} = {fmt_interval(est)} vs target {tgt:g} ± {tol:.4g} "
        f"= [{lo_b:.4g}, {hi_b:.4g}]{off}{few(est)}"
    )
    return Outcome(status, fmt_interval(est), detail, est.value, est.low, est.high, est.n_min)


def _render(c: Within) -> str:
    tol = f"±{c.rel_tol.value:.0%}" if c.rel_tol is not None else f"±{c.abs_tol.value:g}"
    return f"{render(c.value)} within {tol} of {c.target.value:g}"


def _thresholds(c: Within) -> list[Const]:
    tols = [t for t in (c.rel_tol, c.abs_tol) if t is not None]
    return claims.thresholds(c.value) + [c.target, *tols]


def _bare(body: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(body, dict):
        return []
    out = bare_expr(body.get("value"), f"{path}.value")
    return out + [
        (f"{path}.{k}", body[k]) for k in ("target", "rel_tol", "abs_tol") if is_bare(body.get(k))
    ]


def _check(c: Within, catalogs: dict[str, plancheck.Catalog], file: Any) -> None:
    for s in claims.selections(c.value):
        plancheck.check_select(s, catalogs, file)


KINDS = (
    Kind(
        name="within",
        type=Within,
        schema=SCHEMA,
        parse=parse,
        selections=lambda c: claims.selections(c.value),
        thresholds=_thresholds,
        render=_render,
        check=_check,
        evaluate=evaluate,
        rewrite=lambda c, f: Within(
            claims.rewrite(c.value, f), c.target, c.rel_tol, c.abs_tol, c.path
        ),
        placebos=lambda c, points: controls.arm_placebos(c),
        bare_numbers=_bare,
    ),
)
