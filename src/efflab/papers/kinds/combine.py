"""`all: [check, ...]` and `any: [check, ...]` — conditions combined; an error in any
part is an error of the whole (a broken part never hides behind `any`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from efflab.papers import claims, controls, kinds
from efflab.papers.claims import ERROR, FAIL, INCONCLUSIVE, PASS, bare_numbers, render
from efflab.papers.evaluate import Outcome, combine_statuses, evaluate
from efflab.papers.kinds import Kind
from efflab.papers.samples import Samples


@dataclass(frozen=True)
class Combine:
    kind: str  # "all" | "any"
    parts: tuple[Any, ...]
    path: str


SCHEMA = {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/condition"}}


def _parse(name: str):
    def parse(body: list[Any], path: str, ctx: claims.Context) -> Combine:
        return Combine(
            name, tuple(kinds.parse(c, f"{path}[{i}]", ctx) for i, c in enumerate(body)), path
        )

    return parse


def _evaluate(c: Combine, samples: Mapping[str, Samples], paired: bool) -> Outcome:
    outs = [evaluate(p, samples, paired) for p in c.parts]
    ours = "; ".join(dict.fromkeys(o.ours for o in outs))  # a range states its value once
    detail = "; ".join(f"[{o.status}] {o.detail}" for o in outs)
    st = [o.status for o in outs]
    if ERROR in st:
        return Outcome(ERROR, ours, detail)
    if c.kind == "all":
        status = combine_statuses(st)
    else:
        status = PASS if PASS in st else (FAIL if all(s == FAIL for s in st) else INCONCLUSIVE)
    ns = [o.n_min for o in outs if o.n_min is not None]
    return Outcome(status, ours, detail, n_min=min(ns) if ns else None)


def _placebos(c: Combine, points: Mapping[str, list[dict[str, Any]]]) -> list[tuple[str, Any]]:
    """Every selection moved to one arm at once (each arm in turn); without arms, each
    part that has its own placebo (a trend, a ranking) replaced by it in turn."""
    whole = controls.arm_placebos(c)
    if whole:
        return whole
    out = []
    for i, part in enumerate(c.parts):
        for label, p in kinds.placebos(part, points):
            parts = (*c.parts[:i], p, *c.parts[i + 1 :])
            out.append((f"part {i + 1}: {label}", Combine(c.kind, parts, c.path)))
    return out


def _check(c: Combine, catalogs: dict[str, Any], file: Any) -> None:
    for p in c.parts:
        kinds.check(p, catalogs, file)


def _bare(body: Any, path: str) -> list[tuple[str, Any]]:
    if not isinstance(body, list):
        return []
    return [x for i, c in enumerate(body) for x in bare_numbers(c, f"{path}[{i}]")]


def _kind(name: str, joiner: str) -> Kind:
    return Kind(
        name=name,
        type=Combine,
        schema=SCHEMA,
        parse=_parse(name),
        selections=lambda c: [s for p in c.parts for s in claims.selections(p)],
        thresholds=lambda c: [t for p in c.parts for t in claims.thresholds(p)],
        render=lambda c: joiner.join(f"({render(p)})" for p in c.parts),
        check=_check,
        evaluate=_evaluate,
        rewrite=lambda c, f: Combine(c.kind, tuple(claims.rewrite(p, f) for p in c.parts), c.path),
        placebos=_placebos,
        bare_numbers=_bare,
    )


KINDS = (_kind("all", " and "), _kind("any", " or "))
