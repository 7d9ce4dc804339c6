"""Plan-time checks of claims: before anything runs, every selection a claim makes must
name a declared metric and parameter values the experiment's plan contains.

Kept apart from the condition language (efflab.papers.claims) so that module stays the
definition of what a spec may say; this one knows plans (Catalog) and nothing of tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from efflab.core.errors import BadInput
from efflab.papers import kinds
from efflab.papers.claims import Condition, Select, same_value


@dataclass
class Catalog:
    """What an experiment's table can hold, known from its plan before anything runs."""

    experiment: str
    metrics: list[str]
    params: list[str]
    points: list[dict[str, Any]]  # distinct parameter combinations of the plan


def check(cond: Condition, catalogs: dict[str, Catalog], file: Any) -> None:
    """Raise BadInput for whatever would make the claim an error once the table exists.

    Unknown experiment, metric or parameter; a value the grid never takes; a `where`
    that matches no planned point, or several without `agg`; a trend or ranking axis
    with fewer than two values. Each kind checks its own parts (efflab.papers.kinds).
    """
    kinds.check(cond, catalogs, file)


def values(points: list[dict[str, Any]], param: str) -> list[Any]:
    out: list[Any] = []
    for pt in points:
        if param in pt and not any(same_value(pt[param], v) for v in out):
            out.append(pt[param])
    return out


def check_select(
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
        known = values(cat.points, k)
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
        if len(values(match, free)) < 2:
            raise BadInput(file, free_path, f"2+ planned values of '{free}'", values(match, free))
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
