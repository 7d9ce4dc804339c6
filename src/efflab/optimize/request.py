"""One optimisation request: experiment, goals, space, budget and sampler, resolved once.

Command-line options replace the experiment's `optimize:` block field by field, and
`--search` entries narrow its `search:` block; everything is validated here, before
any trial runs (exit 2 naming the option or the YAML path).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.core.specio import canonical_json
from efflab.optimize.goals import (
    Constraint,
    Objective,
    check_metrics,
    parse_constraint,
    parse_objective,
)
from efflab.optimize.space import Source, Space, SpaceBuilder
from efflab.plan.planner import Experiment, Planner, load_experiment
from efflab.plan.registry import Script

SAMPLERS = ("tpe", "nsga2", "random")
DEFAULT_TRIALS = 20


@dataclass(frozen=True)
class Request:
    experiment: str  # the experiment's name
    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...]
    space: Space
    fixed: dict[str, Any]  # --set values (also every trial's inputs)
    trials: int
    sampler: str
    seed: int
    quick: bool
    script_alias: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # declared metrics

    def signature(self) -> str:
        """Same signature = the same study: what --resume matches on."""
        return hashlib.sha256(
            canonical_json(
                {
                    "experiment": self.experiment,
                    "objectives": [o.text() for o in self.objectives],
                    "constraints": [c.text() for c in self.constraints],
                    "space": self.space.to_json(),
                    "fixed": self.fixed,
                    "sampler": self.sampler,
                    "seed": self.seed,
                    "quick": self.quick,
                }
            ).encode()
        ).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "objectives": [o.text() for o in self.objectives],
            "constraints": [c.text() for c in self.constraints],
            "space": self.space.to_json(),
            "fixed": self.fixed,
            "trials": self.trials,
            "sampler": self.sampler,
            "seed": self.seed,
            "quick": self.quick,
            "signature": self.signature(),
        }


@dataclass
class Options:
    """What the command line said (None = not given: the YAML block or a default)."""

    objectives: list[str] | None = None
    constraints: list[str] | None = None
    search: dict[str, Any] | None = None
    trials: int | None = None
    sampler: str | None = None
    seed: int | None = None
    quick: bool = False
    fixed: dict[str, Any] = field(default_factory=dict)


def build_request(
    repo: Path,
    name: str,
    cli: Options,
    *,
    schemas: dict[str, dict[str, Any]] | None = None,
    owner: str | None = None,
    extra_search: list[tuple[dict[str, Any], Source]] | None = None,
) -> tuple[Request, Experiment, Script]:
    """Resolve and validate. `schemas`/`owner` replace the script's input schemas (a
    tournament searches its own, narrower submission schema)."""
    exp = load_experiment(repo, name, cli.quick, cli.fixed)
    script = Planner(repo).registry.find(exp.script, exp.file, "$.script")
    block = exp.raw.get("optimize") or {}
    f = exp.file

    sources: dict[str, tuple[str | Path, str]] = {}
    if cli.objectives:
        objectives = [
            parse_objective(t, "--objective", f"$[{i}]") for i, t in enumerate(cli.objectives)
        ]
    else:
        raw = block.get("objectives") or []
        objectives = [
            parse_objective(t, f, f"$.optimize.objectives[{i}]") for i, t in enumerate(raw)
        ]
        sources |= {f"objective:{i}": (f, f"$.optimize.objectives[{i}]") for i in range(len(raw))}
    if not objectives:
        raise BadInput(
            "--objective",
            "$",
            "at least one METRIC:min|max (or optimize.objectives in the experiment)",
            "none",
        )
    if cli.constraints is not None:
        constraints = [
            parse_constraint(t, "--constraint", f"$[{i}]") for i, t in enumerate(cli.constraints)
        ]
    else:
        raw = block.get("constraints") or []
        constraints = [
            parse_constraint(t, f, f"$.optimize.constraints[{i}]") for i, t in enumerate(raw)
        ]
        sources |= {f"constraint:{i}": (f, f"$.optimize.constraints[{i}]") for i in range(len(raw))}
    check_metrics(objectives, constraints, script.metrics, script.alias, sources)

    sampler = cli.sampler or block.get("sampler", "tpe")
    if sampler not in SAMPLERS:
        raise BadInput("--sampler", "$", f"one of {', '.join(SAMPLERS)}", sampler)
    trials = cli.trials if cli.trials is not None else block.get("trials", DEFAULT_TRIALS)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise BadInput("--trials", "$", "a whole number >= 1", trials)
    seed = cli.seed if cli.seed is not None else block.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise BadInput("--seed", "$", "a whole number >= 0", seed)

    builder = SpaceBuilder(schemas or script.inputs, owner or f"script '{script.alias}'")
    searches: list[tuple[dict[str, Any], Source]] = []
    if exp.raw.get("search"):
        searches.append((exp.raw["search"], Source(f, "$.search")))
    searches += extra_search or []
    if cli.search:
        searches.append((cli.search, Source("--search", "$")))
    grid = {k: v for k, v in exp.grid.items() if k not in cli.fixed}
    space = builder.build(grid, searches, cli.fixed)
    req = Request(
        experiment=exp.name,
        objectives=tuple(objectives),
        constraints=tuple(constraints),
        space=space,
        fixed=dict(cli.fixed),
        trials=trials,
        sampler=sampler,
        seed=seed,
        quick=cli.quick,
        script_alias=script.alias,
        metrics=script.metrics,
    )
    return req, exp, script
