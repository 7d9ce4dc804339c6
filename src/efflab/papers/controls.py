"""Controls and placebos: how a claim shows it can fail.

A verdict tests the paper's mechanism only if the same check, run where the mechanism
is absent, does not pass. Two such runs of a claim's condition, both on measured data:

- its **control** (declared in the spec): the same experiment's points with the
  mechanism absent or neutralised, written as a rewrite of the claim's selections —
  `replace: {precision: {int8-static: fp32}}` (an arm swapped for the baseline) or
  `set: {power_model: flat}` (a parameter every selection gets), or
  `metric: {xc7_lut_nodsp: xc7_lut}` (the same points read another way: the baseline
  built with DSP blocks, a MAC-count predictor in place of the transferred one). The
  control points
  are planned points of the experiment (new ones come in through the paper's
  `experiments[].inputs`). `control: {none: "why"}` says why none exists: the claim
  is then shown "uncontrolled".
- its **placebo** (automatic): the condition with both sides of every comparison
  taken from the same arm (each arm in turn; where the sides differ only in the metric
  they read, each metric is an arm), evaluated with that arm's repetitions
  paired, so the difference is exactly zero. It must fail; a claim that asserts
  equivalence (the placebo holds by definition) says so with
  `placebo: {expect: holds, why: "..."}` and must then have a control that fails.

A claim whose condition also holds on its control or on an undeclared placebo is true
by construction: efflab.papers.verdict shows it as a sanity check and never counts it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from efflab.core.errors import BadInput
from efflab.papers import claims
from efflab.papers.claims import Scalar, Select, same_value

CONTROL_EXPECTED = (
    "replace: {param: {claim's value: control's value}}, set: {param: value} and/or "
    "metric: {claim's metric: control's metric}, with why (or none: why)"
)
_MISSING = object()  # an arm that does not set a parameter


@dataclass(frozen=True)
class Control:
    """A claim's control: how its selections change to take the mechanism away."""

    why: str
    replace: tuple[tuple[str, tuple[tuple[Any, Scalar], ...]], ...] = ()
    set: tuple[tuple[str, Scalar], ...] = ()
    none: bool = False  # no control exists; `why` says why (shown "uncontrolled")
    path: str = "$"
    metric: tuple[tuple[str, str], ...] = ()  # the claim's metric -> the control's

    def select(self, s: Select) -> Select:
        """One selection of the claim, as the control reads it."""
        metric = dict(self.metric).get(s.metric, s.metric)
        where = dict(s.where)
        for param, pairs in self.replace:
            if param not in where:
                continue
            v = where[param]
            vals = v if isinstance(v, tuple) else (v,)
            new = tuple(_swap(x, pairs) for x in vals)
            where[param] = new if isinstance(v, tuple) else new[0]
        for param, v in self.set:
            where[param] = v
        return dataclasses.replace(s, metric=metric, where=tuple(where.items()))

    def condition(self, cond: claims.Condition) -> claims.Condition | None:
        return None if self.none else claims.rewrite(cond, self.select)

    def render(self) -> str:
        if self.none:
            return f"none: {self.why}"
        parts = [f"metric {a} → {b}" for a, b in self.metric]
        parts += [f"{p}: {a} → {b}" for p, pairs in self.replace for a, b in pairs]
        parts += [f"{p} = {v}" for p, v in self.set]
        return "; ".join(parts)


def _is(x: Any, a: Any) -> bool:
    """A parameter value against a YAML mapping key (always a string when it came from JSON)."""
    return same_value(x, a) or str(x) == str(a)


def _swap(x: Any, pairs: tuple[tuple[Any, Scalar], ...]) -> Any:
    return next((b for a, b in pairs if _is(x, a)), x)


@dataclass(frozen=True)
class PlaceboRule:
    """What the placebo must do: fail (default), or hold for an equivalence claim."""

    expect: str = "fail"  # "fail" | "holds"
    why: str = ""


def parse_control(raw: dict[str, Any], path: str, cond: claims.Condition, file: Any) -> Control:
    """A schema-valid `control:` -> Control; a control that changes nothing is bad input."""
    if "none" in raw:
        return Control(str(raw["none"]), none=True, path=path)
    replace = tuple(
        (p, tuple((a, b) for a, b in m.items())) for p, m in (raw.get("replace") or {}).items()
    )
    metric = tuple((raw.get("metric") or {}).items())
    ctl = Control(
        raw["why"], replace, tuple((raw.get("set") or {}).items()), path=path, metric=metric
    )
    sels = claims.selections(cond)
    for a, _ in metric:
        if not any(s.metric == a for s in sels):
            raise BadInput(file, f"{path}.metric.{a}", "a metric the claim reads", a)
    for param, pairs in replace:
        for a, _ in pairs:
            hit = any(
                _is(x, a)
                for s in sels
                for k, v in s.where
                if k == param
                for x in (v if isinstance(v, tuple) else (v,))
            )
            if not hit:
                raise BadInput(
                    file,
                    f"{path}.replace.{param}.{a}",
                    f"a value of '{param}' the claim selects",
                    a,
                    "a control replaces what the claim reads",
                )
    if claims.render(ctl.condition(cond)) == claims.render(cond):
        raise BadInput(file, path, "a control that changes what the claim selects", raw)
    return ctl


def parse_placebo(raw: dict[str, Any] | None) -> PlaceboRule:
    return PlaceboRule() if raw is None else PlaceboRule(raw["expect"], raw["why"])


def arm_placebos(cond: claims.Condition) -> list[tuple[str, claims.Condition]]:
    """The condition with every selection moved to one arm, for each arm it reads.

    Arms are told apart by the parameters whose values differ among the condition's
    selections (all of one experiment); with fewer than two arms there is no placebo.
    """
    sels = claims.selections(cond)
    if len({s.experiment for s in sels}) != 1:
        return []
    keys = list(dict.fromkeys(k for s in sels for k, _ in s.where))
    differing = [k for k in keys if len({repr(dict(s.where).get(k, _MISSING)) for s in sels}) > 1]
    if not differing:  # one point, several metrics: each metric in turn is an arm
        metrics = list(dict.fromkeys(s.metric for s in sels))
        if len(metrics) < 2:
            return []
        return [
            (
                f"both sides {m}",
                claims.rewrite(cond, lambda s, m=m: dataclasses.replace(s, metric=m)),
            )
            for m in metrics
        ]
    arms: dict[tuple[Any, ...], str | None] = {}  # an arm's values -> its aggregate
    for s in sels:
        arms.setdefault(tuple(dict(s.where).get(k, _MISSING) for k in differing), s.agg)
    out = []
    for arm, agg in arms.items():
        assign = dict(zip(differing, arm, strict=True))
        label = ", ".join(
            f"{k}={_text(v)}" for k, v in assign.items() if v is not _MISSING
        ) or "no " + ", ".join(differing)
        out.append((f"both sides {label}", claims.rewrite(cond, _to_arm(assign, agg))))
    return out


def _text(v: Any) -> str:
    return f"[{', '.join(map(str, v))}]" if isinstance(v, tuple) else str(v)


def _to_arm(assign: dict[str, Any], agg: str | None) -> Callable[[Select], Select]:
    """Every selection moved to one arm, reduced over its points as that arm is."""

    def f(s: Select) -> Select:
        where = dict(s.where)
        for k, v in assign.items():
            if v is _MISSING:
                where.pop(k, None)
            else:
                where[k] = v
        return dataclasses.replace(s, where=tuple(where.items()), agg=agg)

    return f
