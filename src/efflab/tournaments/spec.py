"""Optimization tournaments: specs (`workflows/tournaments/<id>.yaml`) and their checks.

A tournament names a base experiment (whose measured script the organiser trusts), the
inputs a submission may set (a JSON Schema), optionally one dependency step whose code
a submission may replace, objectives, constraints, a ranking method and how
verification runs (repetitions, env, sandbox limits). Everything that can be checked
without running is checked here, at load: a spec error is a BadInput (exit 2) naming
the file and JSON path, never a surprise in the middle of someone's submission.

Why a submitted script may only replace a *dependency* of the measured step: numbers
on the leaderboard must come from efflab's own measurement. If a participant's code
were the measured step, it would report its own latency. As a dependency it produces
something (a quantized model, a schedule) that the organiser's step then measures.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema

from efflab.core.errors import BadInput, json_path, unknown_name
from efflab.core.specio import canonical_json, load_yaml, validate
from efflab.plan.planner import Planner, load_experiment
from efflab.plan.registry import Registry, Script

DEFAULT_LIMITS: dict[str, Any] = {
    "cpus": 1,
    "mem_mb": 1024,
    "pids": 256,
    "timeout_s": 600,
    "tmp_mb": 256,
    "file_mb": 256,
    "disk_mb": 512,  # quota of the writable output folder (efflab.runtime.sealed)
}
# what decides a score: a change here makes older ledger entries stale (the title,
# description, window and ranking rule do not: they are applied when a board is built)
SCORING_FIELDS = ("base", "submission", "objectives", "constraints", "verification", "private")
OPS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
}


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # minimize | maximize

    @property
    def sign(self) -> float:
        """+1 when larger is better: multiply to compare on a 'higher is better' scale."""
        return 1.0 if self.direction == "maximize" else -1.0


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    value: float

    def holds(self, measured: float) -> bool:
        return bool(OPS[self.op](measured, self.value))

    def text(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"


@dataclass(frozen=True)
class ScriptSlot:
    """The dependency step whose code a submission may replace."""

    step: str
    required: bool = False
    max_files: int = 200
    max_bytes: int = 5 << 20


@dataclass(frozen=True)
class Private:
    """Organiser-only scoring data: a secret outside the repo, seen by `steps` only."""

    input: str  # the measured step's input that receives the secret's sha256
    steps: tuple[str, ...]


@dataclass
class Tournament:
    id: str
    file: Path
    title: str
    description: str
    open: datetime | None
    close: datetime | None
    experiment: str
    quick: bool
    fixed_inputs: dict[str, Any]
    inputs_schema: dict[str, Any]
    script: ScriptSlot | None
    objectives: list[Objective]
    constraints: list[Constraint]
    ranking: str
    tie_break: list[str]
    weights: dict[str, float]
    repetitions: int
    aggregate: str
    env: str | None
    limits: dict[str, Any]
    claim_tolerance: float
    cores: int
    measured: str  # alias of the base experiment's (measured) script
    metrics: dict[str, dict[str, Any]]  # its declared metrics
    spec_sha256: str
    input_defaults: dict[str, Any] = field(default_factory=dict)  # the measured script's
    scoring_sha256: str = ""  # canonical hash of SCORING_FIELDS: entries under another are stale
    identity: str = "keys"  # keys | open
    limit: int = 5  # attempts per participant per window
    window_h: float = 24.0
    confidence: float = 0.95
    private: Private | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def root(self, repo: Path) -> Path:
        """results/tournaments/<id>: ledger, stored submissions, run records, leaderboard."""
        return repo / "results" / "tournaments" / self.id

    def status(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        if self.open and now < self.open:
            return "upcoming"
        if self.close and now >= self.close:
            return "closed"
        return "open"

    def better(self, metric: str) -> str:
        """'lower' or 'higher' for a metric: the objective's direction, else meta.yaml's."""
        for o in self.objectives:
            if o.metric == metric:
                return "higher" if o.direction == "maximize" else "lower"
        return str(self.metrics.get(metric, {}).get("better", "lower"))

    def unit(self, metric: str) -> str:
        return str(self.metrics.get(metric, {}).get("unit", ""))


def tournaments_dir(repo: Path) -> Path:
    return repo / "workflows" / "tournaments"


def tournament_ids(repo: Path) -> list[str]:
    d = tournaments_dir(repo)
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def tournament_file(repo: Path, tid: str) -> Path:
    f = tournaments_dir(repo) / f"{tid}.yaml"
    if not f.is_file():
        files = list(tournaments_dir(repo).glob("*.yaml")) if tournaments_dir(repo).is_dir() else []
        err = unknown_name("a tournament id", tid, files, "efflab tournament list")
        raise BadInput(tournaments_dir(repo), "$", err.expected, tid, err.hint)
    return f


def _when(value: Any, f: Path, key: str) -> datetime | None:
    if value is None:
        return None
    try:
        d = datetime.fromisoformat(str(value).replace(" ", "T"))
    except ValueError:
        raise BadInput(f, f"$.{key}", "an ISO date or date-time", value) from None
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _normalise_dates(raw: Any) -> Any:
    """YAML reads `2026-01-01` as a date; the schema (and JSON) want strings."""
    if isinstance(raw, dict):
        for k in ("open", "close"):
            if isinstance(raw.get(k), datetime | date):
                raw[k] = raw[k].isoformat()
    return raw


def step_closure(registry: Registry, script: Script) -> dict[str, Script]:
    """The script and every dependency it reaches, by alias."""
    out: dict[str, Script] = {}
    stack = [script]
    while stack:
        s = stack.pop()
        if s.alias in out:
            continue
        out[s.alias] = s
        for i, d in enumerate(s.deps):
            stack.append(registry.find(d.tags, s.meta_file, f"$.deps[{i}].tags"))
    return out


def load_tournament(repo: Path, tid: str) -> Tournament:
    """Load, validate and cross-check a spec against the experiment and its scripts."""
    f = tournament_file(repo, tid)
    raw = _normalise_dates(load_yaml(f))
    validate(raw, "tournament", f)
    if raw["id"] != f.stem:
        raise BadInput(f, "$.id", f"the file's stem '{f.stem}'", raw["id"])
    base = raw["base"]
    try:
        exp = load_experiment(repo, base["experiment"], bool(base.get("quick")))
    except BadInput as exc:
        if exc.path == "$" and str(exc.file).endswith(base["experiment"] + ".yaml"):
            raise BadInput(f, "$.base.experiment", exc.expected, exc.found) from None
        raise
    registry = Registry.for_repo(repo)
    script = registry.find(exp.script, exp.file, "$.script")
    steps = step_closure(registry, script)

    sch = dict(raw["submission"]["inputs"])
    try:
        jsonschema.validators.validator_for(sch).check_schema(sch)
    except jsonschema.SchemaError as exc:
        where = json_path(["submission", "inputs", *exc.absolute_path])
        raise BadInput(f, where, "a valid JSON Schema", exc.message) from None
    if sch.get("type", "object") != "object":
        raise BadInput(f, "$.submission.inputs.type", "'object'", sch.get("type"))
    sch.setdefault("type", "object")
    sch.setdefault("additionalProperties", False)  # what isn't allowed can't be set
    fixed = dict(base.get("inputs") or {})
    for name in sch.get("properties") or {}:
        where = f"$.submission.inputs.properties.{name}"
        if name not in script.inputs:
            raise BadInput(
                f, where, f"an input of '{script.alias}' ({', '.join(sorted(script.inputs))})", name
            )
        if name in fixed:
            raise BadInput(f, where, "an input not also fixed in $.base.inputs", name)
    Planner(repo, registry).check_inputs(script, fixed, f, {k: f"$.base.inputs.{k}" for k in fixed})

    slot = None
    if raw["submission"].get("script"):
        s = raw["submission"]["script"]
        deps = sorted(a for a in steps if a != script.alias)
        if s["step"] not in deps:
            raise BadInput(
                f,
                "$.submission.script.step",
                f"a dependency of the measured step '{script.alias}' ({', '.join(deps) or 'none'}):"
                " the measured step's code stays the organiser's",
                s["step"],
            )
        slot = ScriptSlot(
            s["step"], bool(s.get("required")), s.get("max_files", 200), s.get("max_bytes", 5 << 20)
        )

    objectives = [Objective(o["metric"], o["direction"]) for o in raw["objectives"]]
    constraints = [Constraint(c["metric"], c["op"], float(c["value"])) for c in raw.get("constraints") or []]  # fmt: skip
    for kind, items in (("objectives", objectives), ("constraints", constraints)):
        for i, o in enumerate(items):
            if o.metric not in script.metrics:
                raise BadInput(
                    f,
                    f"$.{kind}[{i}].metric",
                    f"a metric measured by '{script.alias}' ({', '.join(script.metrics)})",
                    o.metric,
                )
    names = [o.metric for o in objectives]
    if len(set(names)) != len(names):
        raise BadInput(f, "$.objectives", "each metric at most once", names)
    ranking = raw["ranking"]
    tie = list(ranking.get("tie_break") or names)
    for i, m in enumerate(tie):
        if m not in names:
            raise BadInput(f, f"$.ranking.tie_break[{i}]", f"an objective metric {names}", m)
    weights = {m: float(ranking.get("weights", {}).get(m, 1.0)) for m in names}
    for m in ranking.get("weights") or {}:
        if m not in names:
            raise BadInput(f, f"$.ranking.weights.{m}", f"an objective metric {names}", m)

    ver = raw["verification"]
    env = ver.get("env")
    for alias, s in sorted(steps.items()):
        if not s.env or (env and s.env != env):
            raise BadInput(
                f,
                "$.verification.env",
                f"every step to run in env '{env}'"
                if env
                else "every step to declare an env (submissions are verified only in containers)",
                f"step '{alias}' in env {s.env!r} ({s.meta_file})",
            )
    private = _private(raw, f, script, steps, slot, registry, fixed, sch)
    opened, closed = _when(raw.get("open"), f, "open"), _when(raw.get("close"), f, "close")
    if opened and closed and closed <= opened:
        raise BadInput(f, "$.close", f"a moment after open ({raw['open']})", raw["close"])
    return Tournament(
        id=raw["id"],
        file=f,
        title=raw["title"],
        description=raw.get("description", ""),
        open=opened,
        close=closed,
        experiment=base["experiment"],
        quick=bool(base.get("quick")),
        fixed_inputs=fixed,
        inputs_schema=sch,
        script=slot,
        objectives=objectives,
        constraints=constraints,
        ranking=ranking["method"],
        tie_break=tie,
        weights=weights,
        repetitions=int(ver.get("repetitions", 3)),
        aggregate=ver.get("aggregate", "median"),
        env=env,
        limits={**DEFAULT_LIMITS, **(ver.get("limits") or {})},
        claim_tolerance=float(ver.get("claim_tolerance", 0.10)),
        cores=int(ver.get("cores", 1)),
        measured=script.alias,
        metrics=script.metrics,
        spec_sha256=hashlib.sha256(f.read_bytes()).hexdigest(),
        input_defaults={**script.defaults(), **exp.inputs},
        raw=raw,
        scoring_sha256=hashlib.sha256(
            canonical_json({k: raw.get(k) for k in SCORING_FIELDS}).encode()
        ).hexdigest(),
        identity=(raw.get("identity") or {}).get("mode", "keys"),
        limit=int((raw.get("submissions") or {}).get("limit", 5)),
        window_h=float((raw.get("submissions") or {}).get("window_h", 24.0)),
        confidence=float(ver.get("confidence", 0.95)),
        private=private,
    )


def _private(
    raw: dict[str, Any],
    f: Path,
    script: Script,
    steps: dict[str, Script],
    slot: ScriptSlot | None,
    registry: Registry,
    fixed: dict[str, Any],
    sch: dict[str, Any],
) -> Private | None:
    """Check `private:`: the secret never reaches the replaceable step or what it reads."""
    p = raw.get("private")
    if not p:
        return None
    if p["input"] not in script.inputs:
        raise BadInput(f, "$.private.input", f"an input of '{script.alias}'", p["input"])
    if p["input"] in fixed or p["input"] in (sch.get("properties") or {}):
        raise BadInput(f, "$.private.input", "an input neither fixed nor set by submissions", p["input"])  # fmt: skip
    reach = set(step_closure(registry, steps[slot.step])) if slot else set()
    for i, alias in enumerate(p["steps"]):
        if alias not in steps:
            raise BadInput(f, f"$.private.steps[{i}]", f"a step of the measured closure ({', '.join(sorted(steps))})", alias)  # fmt: skip
        if alias in reach:
            raise BadInput(
                f,
                f"$.private.steps[{i}]",
                f"an organiser step outside what the replaceable step '{slot.step}' runs or reads"
                if slot
                else "an organiser step",
                alias,
            )
    return Private(p["input"], tuple(p["steps"]))


def example_submission(t: Tournament) -> dict[str, Any]:
    """A submission file a participant can start from (`efflab tournament show`)."""
    props = t.inputs_schema.get("properties") or {}
    inputs = {
        k: v.get("default", t.input_defaults.get(k, (v.get("enum") or [None])[0]))
        for k, v in props.items()
    }
    sk: dict[str, Any] = {"participant": "your-name", "entry": "my-entry", "inputs": inputs}
    if t.objectives:
        sk["claimed"] = {o.metric: 0.0 for o in t.objectives}
    if t.identity == "keys":
        sk["signature"] = "entry.yaml.sig"
    if t.script:
        sk["archive"] = f"my-{t.script.step}.tar.gz"
    return sk
