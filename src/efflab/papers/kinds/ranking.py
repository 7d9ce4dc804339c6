"""`ranking: {param, where, first: {metric}, second: {metric}, expect: same|differ}` —
the items (values of `param`) ordered by one metric against by another; every pair
decided on its own intervals."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from efflab.papers import claims, plancheck
from efflab.papers.bootstrap import Estimate, Resolver
from efflab.papers.claims import FAIL, INCONCLUSIVE, PASS, Select, render
from efflab.papers.evaluate import Outcome, axis, few, natural, unsure
from efflab.papers.kinds import Kind
from efflab.papers.samples import Samples


@dataclass(frozen=True)
class Ranking:
    """Items (values of `param`) ordered by `first` vs by `second`: `same` or `differ`."""

    first: Select
    second: Select
    param: str
    expect: str
    path: str


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["param", "first", "second", "expect"],
    "properties": {
        "experiment": {"$ref": "#/$defs/name"},
        "where": {"$ref": "#/$defs/where"},
        "param": {"$ref": "#/$defs/name"},
        "first": {"$ref": "#/$defs/metric_stat"},
        "second": {"$ref": "#/$defs/metric_stat"},
        "expect": {"enum": ["same", "differ"]},
    },
}


def parse(body: dict[str, Any], path: str, ctx: claims.Context) -> Ranking:
    base = {k: body[k] for k in ("experiment", "where") if k in body}
    first = claims.select({**base, **body["first"]}, f"{path}.first", ctx)
    second = claims.select({**base, **body["second"]}, f"{path}.second", ctx)
    return Ranking(first, second, body["param"], body["expect"], path)


def _sign(e: Estimate) -> int | None:
    """+1 / -1 when the whole interval is on one side of 0, 0 for an exact tie."""
    if e.low > 0:
        return 1
    if e.high < 0:
        return -1
    if e.low == e.high == 0:
        return 0
    return None


def evaluate(c: Ranking, samples: Mapping[str, Samples], paired: bool) -> Outcome:
    items = natural(axis(c.first, c.param, samples))
    r = Resolver(samples, paired)
    firsts = [r.bind(c.first, ((c.param, k),)) for k in items]
    seconds = [r.bind(c.second, ((c.param, k),)) for k in items]
    pairs = list(itertools.combinations(range(len(items)), 2))
    d1 = r.estimate([Resolver.minus(firsts[i], firsts[j]) for i, j in pairs])
    d2 = r.estimate([Resolver.minus(seconds[i], seconds[j]) for i, j in pairs])
    point_a = r.estimate(firsts)
    point_b = r.estimate(seconds)
    too_few = any(unsure(e) for e in d1 + d2)
    signs = [(_sign(a), _sign(b)) for a, b in zip(d1, d2, strict=True)]
    certain = [s for s in signs if s[0] is not None and s[1] is not None]
    disagree = [s for s in certain if s[0] != s[1]]
    all_certain = len(certain) == len(signs)
    if c.expect == "differ":
        status = PASS if disagree else (FAIL if all_certain else INCONCLUSIVE)
    else:
        status = FAIL if disagree else (PASS if all_certain else INCONCLUSIVE)
    if too_few:
        status = INCONCLUSIVE
    order_a = [items[i] for i in sorted(range(len(items)), key=lambda i: point_a[i].value)]
    order_b = [items[i] for i in sorted(range(len(items)), key=lambda i: point_b[i].value)]
    ours = (
        f"by {c.first.metric}: {' < '.join(map(str, order_a))}; "
        f"by {c.second.metric}: {' < '.join(map(str, order_b))}"
    )
    undecided = [
        f"{items[i]} vs {items[j]}" for (i, j), s in zip(pairs, signs, strict=True) if None in s
    ]
    detail = (
        f"{ours}; {len(disagree)} of {len(pairs)} pairs ordered oppositely with 95% confidence"
        + (f"; undecided pairs: {', '.join(undecided)}" if undecided else "")
        + few(min(d1 + d2, key=lambda e: (e.n_min, -e.contended)))
    )
    return Outcome(status, ours, detail, n_min=min(e.n_min for e in d1 + d2))


def _check(c: Ranking, catalogs: dict[str, plancheck.Catalog], file: Any) -> None:
    for s in (c.first, c.second):
        plancheck.check_select(s, catalogs, file, c.param, f"{c.path}.param")


def _render(c: Ranking) -> str:
    verb = "differs from" if c.expect == "differ" else "equals"
    return f"order of {c.param} by {render(c.first)} {verb} order by {render(c.second)}"


def placebos(c: Ranking, points: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Both orders by the first metric: the same order, so `differ` fails, `same` holds."""
    return [(f"both orders by {c.first.metric}", replace(c, second=c.first))]


KINDS = (
    Kind(
        name="ranking",
        type=Ranking,
        schema=SCHEMA,
        parse=parse,
        selections=lambda c: [c.first, c.second],
        thresholds=lambda c: [],
        render=_render,
        check=_check,
        evaluate=evaluate,
        rewrite=lambda c, f: replace(c, first=f(c.first), second=f(c.second)),
        placebos=placebos,
    ),
)
