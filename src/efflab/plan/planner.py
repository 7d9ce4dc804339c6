"""Planner: experiment spec -> invocations with content-hash keys.

Pure and fast (reads specs, never runs anything). A key hashes the script's files,
its canonical inputs, its deps' keys and its env's digest, so an unchanged point is
the same key (cached) and a changed one is a new key (rerun). Shared deps (dataset,
trained model) resolve to one invocation used by many points.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from efflab.core.envspec import context_digest
from efflab.core.errors import BadInput, json_path, unknown_name
from efflab.core.invocation import KEY_LEN, Invocation
from efflab.core.runtime_identity import RuntimeIdentity, host_identity
from efflab.core.specio import canonical_json, describe_error, load_yaml, validate
from efflab.plan.registry import Registry, Script, with_instrument

MAX_POINTS = 200_000  # points x repetitions in one experiment (EFFLAB_MAX_POINTS)


@dataclass
class Point:
    params: dict[str, Any]
    repetition: int
    key: str


@dataclass
class Experiment:
    name: str
    file: Path
    script: str
    description: str
    inputs: dict[str, Any]
    grid: dict[str, list[Any]]
    points: list[dict[str, Any]]
    repetitions: int
    metrics: list[str] | None
    raw: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)  # --set values (named as such)
    instrument: str | None = None  # count the measured script's work (perf|cachegrind|auto)


@dataclass
class Plan:
    experiment: Experiment
    script: Script
    invocations: dict[str, Invocation]
    points: list[Point]
    runtime: RuntimeIdentity  # what every key was computed for (run it nowhere else)

    @property
    def targets(self) -> list[Invocation]:
        seen: dict[str, Invocation] = {}
        for p in self.points:
            seen.setdefault(p.key, self.invocations[p.key])
        return list(seen.values())

    def param_names(self) -> list[str]:
        """Point parameters: grid axes, then keys of explicit points, in spec order."""
        names: list[str] = list(self.experiment.grid)
        for p in self.experiment.points:
            names += [k for k in p if k not in names]
        return names


def experiment_file(repo: Path, name: str) -> Path:
    if name.endswith((".yaml", ".yml")) and Path(name).exists():
        return Path(name)
    f = repo / "workflows" / "experiments" / f"{name}.yaml"
    if not f.exists():
        files = list((repo / "workflows" / "experiments").glob("*.yaml"))
        err = unknown_name("an experiment name", name, files)
        raise BadInput(f, "$", err.expected, name, err.hint)
    return f


def load_experiment(
    repo: Path, name: str, quick: bool = False, overrides: dict[str, Any] | None = None
) -> Experiment:
    """Load + validate an experiment; `quick` applies its `quick:` block, then overrides."""
    f = experiment_file(repo, name)
    raw = load_yaml(f)
    validate(raw, "experiment", f)
    if raw["name"] != f.stem:  # else it would write into another experiment's results
        raise BadInput(f, "$.name", f"the file's name '{f.stem}'", raw["name"])
    inputs = dict(raw.get("inputs") or {})
    grid = dict(raw.get("grid") or {})
    reps = raw.get("repetitions", 1)
    if quick and raw.get("quick"):
        q = raw["quick"]
        inputs.update(q.get("inputs") or {})
        grid.update(q.get("grid") or {})
        reps = q.get("repetitions", reps)
    for k, v in (overrides or {}).items():
        grid.pop(k, None)
        inputs[k] = v
    return Experiment(
        name=raw["name"],
        file=f,
        script=raw["script"],
        description=raw.get("description", ""),
        inputs=inputs,
        grid=grid,
        points=list(raw.get("points") or []),
        repetitions=reps,
        metrics=raw.get("metrics"),
        raw=raw,
        overrides=dict(overrides or {}),
        instrument=raw.get("instrument"),
    )


def _fill(template: Any, parent: dict[str, Any]) -> Any:
    """'{seed}' keeps the parent's value and type; other strings are formatted."""
    if not isinstance(template, str):
        return template
    parsed = list(string.Formatter().parse(template))
    if len(parsed) == 1 and parsed[0][0] == "" and parsed[0][1] and not parsed[0][2]:
        return parent[parsed[0][1]]
    return template.format_map(parent)


class Planner:
    """Expands experiments; caches per-script work so 10k points plan in about a second."""

    def __init__(
        self,
        repo: Path,
        registry: Registry | None = None,
        salt: str = "",
        runtime: RuntimeIdentity | None = None,
        inspecting: bool = False,
    ):
        """`runtime`: where the plan will run (`Runtime.identity()`); it enters every
        key, so a point measured elsewhere is never a cache hit. Default: this
        machine's host runtime. `inspecting`: only looking (`script show`, `plan`,
        `explain`): no collection's check.py is imported, trusted or not
        (`Script.runs_checks`)."""
        self.repo = repo
        self.registry = registry or Registry.for_repo(repo)
        self.salt = salt
        self.runtime = runtime or host_identity()
        self._runtime_part = self.runtime.key_part()
        self.inspecting = inspecting
        self.invocations: dict[str, Invocation] = {}
        self._ok_values: set[tuple[str, str, str, str]] = set()
        self._memo: dict[tuple[str, str, int, bool], Invocation] = {}
        self._found: dict[tuple[str, str], Script] = {}

    def check_inputs(
        self, script: Script, inputs: dict[str, Any], file: Path | str, paths: dict[str, str]
    ) -> None:
        """Unknown inputs and wrong types are errors naming where the value came from."""
        for name, value in inputs.items():
            where = paths.get(name, f"$.inputs.{name}")
            if name not in script.inputs:
                raise BadInput(
                    file,
                    where,
                    f"an input of script '{script.alias}' "
                    f"({', '.join(sorted(script.inputs)) or 'none'})",
                    name,
                    "unknown input",
                )
            memo = (script.alias, name, type(value).__name__, repr(value))
            if memo in self._ok_values:
                continue
            errs = list(
                script.input_validator.evolve(
                    schema={"type": "object", "properties": {name: script.inputs[name]}}
                ).iter_errors({name: value})
            )
            if errs:
                expected, found = describe_error(errs[0])
                raise BadInput(
                    file, where, f"{expected} for input '{name}' of '{script.alias}'", found
                )
            self._ok_values.add(memo)

    def invocation(
        self,
        script: Script,
        given: dict[str, Any],
        file: Path | str,
        paths: dict[str, str],
        repetition: int = 0,
        salted: bool = False,
    ) -> Invocation:
        memo = (
            script.alias,
            repr(sorted((k, type(v).__name__, v) for k, v in given.items())),
            repetition,
            salted,
        )
        if memo in self._memo:  # shared deps: resolved once, not once per point
            return self._memo[memo]
        self.check_inputs(script, given, file, paths)
        inputs = {**script.defaults(), **given}
        if script.runs_checks(self.inspecting) and script.checker is not None:  # cross-field rules
            for fld, expected, found in script.checker(inputs) or []:
                raise BadInput(file, paths.get(fld, f"$.inputs.{fld}"), expected, found)
        deps: dict[str, dict[str, str]] = {}
        for i, d in enumerate(script.deps):
            if not d.wanted(inputs):
                continue
            dep_script = self._found.get((script.alias, d.tags))
            if dep_script is None:
                dep_script = self.registry.find(d.tags, script.meta_file, f"$.deps[{i}].tags")
                self._found[(script.alias, d.tags)] = dep_script
            dep_inputs = {k: _fill(v, inputs) for k, v in d.inputs.items()}
            dep_paths = {k: f"$.deps[{i}].inputs.{k}" for k in dep_inputs}
            inv = self.invocation(dep_script, dep_inputs, script.meta_file, dep_paths)
            deps[d.name] = {"alias": inv.alias, "key": inv.key}
        env_digest = context_digest(self.repo, script.env) if script.env else None
        resources = _resources(script, inputs, file)
        ident = {
            "uid": script.uid,
            "files": script.files_digest,
            "inputs": inputs,
            "deps": {n: v["key"] for n, v in deps.items()},
            "env": env_digest,
            "repetition": repetition,
            "salt": self.salt if salted else "",
            "runtime": self._runtime_part,
        }
        if resources.get("instrument"):  # counted: other metrics, another measurement
            ident["instrument"] = resources["instrument"]
        if script.collection:  # a collection's commit is part of its scripts' identity
            ident["collection"] = script.collection
        key = hashlib.sha256(canonical_json(ident).encode()).hexdigest()[:KEY_LEN]
        inv = self.invocations.get(key)
        if inv is None:
            inv = Invocation(
                key=key,
                alias=script.alias,
                script_dir=str(script.path),
                run=script.run,
                inputs=inputs,
                deps=deps,
                env=script.env,
                env_digest=env_digest,
                resources=resources,
                repetition=repetition,
                include=[str(p) for p in script.include],
                outputs={"metrics": script.metrics, "files": script.files},
                key_parts={
                    **ident,
                    "files": {shown: sha for _, shown, sha in script.file_digests},
                    "deps": {n: dict(v) for n, v in deps.items()},
                },
            )
            self.invocations[key] = inv
        self._memo[memo] = inv
        return inv

    def plan(self, exp: Experiment) -> Plan:
        script = self.registry.find(exp.script, exp.file, "$.script")
        if exp.instrument:
            script = with_instrument(script, exp.instrument)
        _check_size(exp)
        for axis, values in exp.grid.items():  # validate each axis value once, with its path
            if axis not in script.inputs:  # the axis itself is wrong, not its first value
                self.check_inputs(script, {axis: None}, exp.file, {axis: json_path(["grid", axis])})
            for j, v in enumerate(values):
                self.check_inputs(script, {axis: v}, exp.file, {axis: json_path(["grid", axis, j])})
        combos: list[tuple[dict[str, Any], dict[str, str]]] = []
        axes = list(exp.grid)
        # no grid axes: the product would be one empty point on top of explicit points
        grid_values = itertools.product(*(exp.grid[a] for a in axes)) if axes else []
        for values in grid_values:
            combos.append(
                (dict(zip(axes, values, strict=True)), {a: json_path(["grid", a]) for a in axes})
            )
        for i, p in enumerate(exp.points):
            combos.append((dict(p), {k: json_path(["points", i, k]) for k in p}))
        if not combos:
            combos = [({}, {})]
        points: list[Point] = []
        set_paths = {k: f"--set {k}" for k in exp.overrides}
        for params, paths in combos:
            given = {**exp.inputs, **params}
            paths = {**set_paths, **paths}
            for r in range(exp.repetitions):
                inv = self.invocation(script, given, exp.file, paths, repetition=r, salted=True)
                points.append(Point(params=params, repetition=r, key=inv.key))
        if exp.metrics:
            for i, m in enumerate(exp.metrics):
                if m not in script.metrics:
                    raise BadInput(
                        exp.file,
                        f"$.metrics[{i}]",
                        f"a metric declared by '{script.alias}' ({', '.join(script.metrics)})",
                        m,
                    )
        used = _closure(self.invocations, {p.key for p in points})
        return Plan(exp, script, {k: self.invocations[k] for k in used}, points, self.runtime)


def _check_size(exp: Experiment) -> None:
    """Refuse a plan too big to be meant (10^8 points would exhaust memory first)."""
    cap = max_points()
    n = 1 if exp.grid else 0
    for values in exp.grid.values():
        n *= len(values)
    total = (n + len(exp.points)) * exp.repetitions
    if total > cap:
        raise BadInput(exp.file, "$.grid", f"at most {cap} points x repetitions",
                       f"{total}", "raise EFFLAB_MAX_POINTS to allow it")  # fmt: skip


def max_points() -> int:
    text = os.environ.get("EFFLAB_MAX_POINTS", "")
    return int(text) if text.isdigit() and int(text) > 0 else MAX_POINTS


def _resources(script: Script, inputs: dict[str, Any], file: Path | str) -> dict[str, Any]:
    """Resources may follow inputs (`cpus: "{threads}"`): resolve them per invocation."""
    out = dict(script.resources)
    for name, value in script.resources.items():
        if isinstance(value, str) and name != "instrument":  # a tool's name, no template
            resolved = _fill(value, inputs)
            if isinstance(resolved, bool) or not isinstance(resolved, int | float) or resolved <= 0:
                raise BadInput(
                    file,
                    f"$.resources.{name}",
                    f"'{value}' to resolve to a positive number for script '{script.alias}'",
                    resolved,
                )
            out[name] = resolved
    return out


def _closure(invocations: dict[str, Invocation], roots: set[str]) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    stack = sorted(roots)
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        out.append(k)
        stack.extend(d["key"] for d in invocations[k].deps.values())
    return out


def plan_experiment(
    repo: Path,
    name: str,
    quick: bool = False,
    overrides: dict[str, Any] | None = None,
    salt: str = "",
    runtime: RuntimeIdentity | None = None,
    inspecting: bool = False,
) -> Plan:
    exp = load_experiment(repo, name, quick, overrides)
    return Planner(repo, salt=salt, runtime=runtime, inspecting=inspecting).plan(exp)


def single_invocation(
    script: Script, overrides: dict[str, Any], repetitions: int = 1
) -> Experiment:
    """An ad-hoc experiment of one point: `efflab script run` (its results go under
    results/script-<alias>/ like any experiment's; `--set` errors name `--set`)."""
    return Experiment(
        name=f"script-{script.alias}",
        file=script.meta_file,
        script=script.alias,
        description=f"efflab script run {script.alias}",
        inputs=dict(overrides),
        grid={},
        points=[{}],
        repetitions=repetitions,
        metrics=None,
        raw={},
        overrides=dict(overrides),
    )
