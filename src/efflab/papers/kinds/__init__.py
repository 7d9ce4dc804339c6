"""Claim condition kinds as plug-ins: one module per kind, found by this registry.

Why: a new condition kind used to mean edits in four files (parse, selections,
thresholds, render, plan check, evaluate, and the schema in core/). Now a kind is one
module in this package that defines `KINDS = (Kind(...), ...)`: the registry imports
every module here once, dispatches on the parsed dataclass's type, and the paper
schema's `condition` is assembled from the kinds' own schema fragments.

A kind's functions:

    parse(body, path, ctx) -> condition       schema-valid YAML body -> dataclass
    selections / thresholds(cond)             what it reads, which bars it rests on
    render(cond) -> str                       the human form in reports
    check(cond, catalogs, file)               plan-time check (BadInput before a run)
    evaluate(cond, samples, paired) -> Outcome the three-way verdict with its interval
    rewrite(cond, f)                          every selection through f (controls)
    placebos(cond, catalogs) -> [(label, cond)] both sides from one arm (must fail)
    bare_numbers(body, path)                  bare numbers where a threshold belongs

This package imports nothing of efflab at module level, so the modules that kinds
build on (claims, evaluate, plancheck) can import it back without a cycle; the kind
modules are imported on first use.
"""

from __future__ import annotations

import copy
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any


def _none(body: Any, path: str) -> list[tuple[str, Any]]:
    return []


@dataclass(frozen=True)
class Kind:
    """One condition kind: its YAML key, dataclass, schema fragment and behaviour."""

    name: str
    type: type
    schema: dict[str, Any]  # JSON Schema of the body; may $ref the paper schema's $defs
    parse: Callable[..., Any]
    selections: Callable[[Any], list[Any]]
    thresholds: Callable[[Any], list[Any]]
    render: Callable[[Any], str]
    check: Callable[[Any, dict[str, Any], Any], None]
    evaluate: Callable[..., Any]
    rewrite: Callable[[Any, Callable[[Any], Any]], Any]
    placebos: Callable[[Any, dict[str, Any]], list[tuple[str, Any]]]
    bare_numbers: Callable[[Any, str], list[tuple[str, Any]]] = _none


@cache
def registry() -> dict[str, Kind]:
    """Every kind of this package by YAML key (modules imported once, in name order)."""
    out: dict[str, Kind] = {}
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        module = importlib.import_module(f"{__name__}.{mod}")
        for kind in getattr(module, "KINDS", ()):
            if kind.name in out:
                raise RuntimeError(f"condition kind '{kind.name}' defined twice ({mod})")
            out[kind.name] = kind
    return out


@cache
def _by_type() -> dict[type, Kind]:
    by: dict[type, Kind] = {}
    for k in registry().values():
        by.setdefault(k.type, k)
    return by


def of(cond: Any) -> Kind:
    """The kind of a parsed condition (a combination knows its own name)."""
    name = getattr(cond, "kind", None)
    if isinstance(name, str) and name in registry():
        return registry()[name]
    try:
        return _by_type()[type(cond)]
    except KeyError:
        raise TypeError(f"not a claim condition: {type(cond).__name__}") from None


def parse(raw: dict[str, Any], path: str, ctx: Any) -> Any:
    """Schema-valid YAML {kind: body} -> that kind's dataclass."""
    ((name, body),) = raw.items()
    kind = registry().get(name)
    if kind is None:
        from efflab.core.errors import BadInput

        raise BadInput(ctx.file, path, f"one of {', '.join(registry())}", name)
    return kind.parse(body, f"{path}.{name}", ctx)


def check(cond: Any, catalogs: dict[str, Any], file: Any) -> None:
    of(cond).check(cond, catalogs, file)


def evaluate(cond: Any, samples: Any, paired: bool = False) -> Any:
    return of(cond).evaluate(cond, samples, paired)


def placebos(cond: Any, catalogs: dict[str, Any]) -> list[tuple[str, Any]]:
    return of(cond).placebos(cond, catalogs)


def paper_schema(base: dict[str, Any]) -> dict[str, Any]:
    """The paper schema with `$defs.condition` holding one property per kind."""
    sch = copy.deepcopy(base)
    sch["$defs"]["condition"]["properties"] = {n: k.schema for n, k in registry().items()}
    return sch
