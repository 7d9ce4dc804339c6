"""`trend: {metric, where, along, direction: increasing|decreasing, strict, order}` — a
metric monotone along one parameter, the others fixed by `where`; every step decided
on its own interval."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from efflab.core.errors import BadInput
from efflab.papers import claims, plancheck
from efflab.papers.bootstrap import Resolver, fmt_interval
from efflab.papers.claims import Scalar, Select, render, same_value
from efflab.papers.evaluate import Outcome, axis, combine_statuses, few, natural, three_way
from efflab.papers.kinds import Kind
from efflab.papers.samples import Samples


@dataclass(frozen=True)
class Trend:
    """`sel`'s metric is monotone along parameter `along` (other params fixed by where)."""

    sel: Select
    along: str
    direction: str  # "increasing" | "decreasing"
    strict: bool
    order: tuple[Scalar, ...] | None
    path: str


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["metric", "along", "direction"],
    "properties": {
        "experiment": {"$ref": "#/$defs/name"},
        "metric": {"$ref": "#/$defs/name"},
        "where": {"$ref": "#/$defs/where"},
        "stat": {"$ref": "#/$defs/stat"},
        "agg": {"$ref": "#/$defs/agg"},
        "along": {"$ref": "#/$defs/name"},
        "direction": {"enum": ["increasing", "decreasing"]},
        "strict": {"type": "boolean"},
        "order": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/scalar"}},
    },
}


def parse(body: dict[str, Any], path: str, ctx: claims.Context) -> Trend:
    order = tuple(body["order"]) if "order" in body else None
    sel = claims.select(body, path, ctx)
    return Trend(sel, body["along"], body["direction"], body.get("strict", False), order, path)


def evaluate(c: Trend, samples: Mapping[str, Samples], paired: bool) -> Outcome:
    keys = axis(c.sel, c.along, samples)
    if c.order is not None:
        keys = [next((k for k in keys if same_value(k, o)), o) for o in c.order]
    else:
        keys = natural(keys)
    r = Resolver(samples, paired)
    bound = [r.bind(c.sel, ((c.along, k),)) for k in keys]
    unit = r.unit(c.sel)
    ests = r.estimate(bound, [unit] * len(bound))
    pair_bound = [Resolver.minus(b, a) for a, b in zip(bound, bound[1:], strict=False)]
    d_ests = r.estimate(pair_bound, [unit] * len(pair_bound))
    ok = {
        ("increasing", True): lambda x: x > 0,
        ("increasing", False): lambda x: x >= 0,
        ("decreasing", True): lambda x: x < 0,
        ("decreasing", False): lambda x: x <= 0,
    }[(c.direction, c.strict)]
    status = combine_statuses([three_way(ok, d) for d in d_ests])
    ours = " → ".join(fmt_interval(e) for e in ests)
    steps = "; ".join(fmt_interval(d) for d in d_ests)
    detail = f"{c.along} = {' → '.join(map(str, keys))}: {ours}; steps {steps}{few(d_ests[0])}"
    return Outcome(status, ours, detail, n_min=min(e.n_min for e in ests))


def _check(c: Trend, catalogs: dict[str, plancheck.Catalog], file: Any) -> None:
    plancheck.check_select(c.sel, catalogs, file, c.along, f"{c.path}.along")
    if c.order is not None:
        known = plancheck.values(catalogs[c.sel.experiment].points, c.along)
        for i, o in enumerate(c.order):
            if not any(same_value(k, o) for k in known):
                raise BadInput(file, f"{c.path}.order[{i}]", f"one of {known}", o)


def _render(c: Trend) -> str:
    strict = "strictly " if c.strict else ""
    return f"{render(c.sel)} {strict}{c.direction} along {c.along}"


def placebos(c: Trend, points: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, Trend]]:
    """The metric held at one value of the axis (first, then last): a flat line.

    Paired, every step is exactly 0: a strict trend fails, a non-strict one holds.
    """
    mine = [
        pt
        for pt in points.get(c.sel.experiment, [])
        if all(
            k in pt and any(same_value(pt[k], w) for w in (v if isinstance(v, tuple) else (v,)))
            for k, v in c.sel.where
        )
    ]
    keys = list(c.order) if c.order is not None else natural(plancheck.values(mine, c.along))
    ends = list({repr(k): k for k in keys[:1] + keys[-1:]}.values())  # first, last
    return [(f"flat at {c.along}={k}", replace(c, order=(k, k))) for k in ends]


KINDS = (
    Kind(
        name="trend",
        type=Trend,
        schema=SCHEMA,
        parse=parse,
        selections=lambda c: [c.sel],
        thresholds=lambda c: [],
        render=_render,
        check=_check,
        evaluate=evaluate,
        rewrite=lambda c, f: replace(c, sel=f(c.sel)),
        placebos=placebos,
    ),
)
