"""The nightly suite (`workflows/nightly.yaml`): which experiments, at which size, judged how.

Loading validates the file against `schemas/nightly.schema.json` and then plans every
experiment, so any bad input (unknown experiment, unknown input override, a metric the
experiment does not report) fails with the suite file and JSON path before anything
runs. Policies resolve from the most general to the most specific block:
the script's meta (`noiseless: true` on a metric) < suite `policy.default` < suite
`policy.metrics.<m>` < entry `policy.default` < entry `policy.metrics.<m>`.

`neutral_inputs` (suite-wide and per entry) name inputs that do not affect the
measurement (a log level, an output format): a point keeps its baseline when only they
change. Any other input change resets the point's baseline, and the night says so.
`change_points:` configures the change-point analysis (`efflab.nightly.changepoints`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from efflab.core.errors import BadInput
from efflab.core.runtime_identity import RuntimeIdentity
from efflab.core.specio import load_yaml, validate
from efflab.nightly.changepoints import Settings
from efflab.nightly.regression import Policy
from efflab.plan.planner import Plan, Planner, load_experiment

DEFAULT_TREND_NIGHTS = 30


@dataclass
class Entry:
    """One experiment of the suite, with its size and its policy blocks."""

    index: int
    name: str
    quick: bool = False
    repetitions: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    metrics: list[str] | None = None
    policy_default: dict[str, Any] = field(default_factory=dict)
    policy_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    neutral_inputs: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"$.experiments[{self.index}]"

    def workload(self) -> dict[str, Any]:
        """What the suite asked for; stored in the history next to the night's keys."""
        return {"quick": self.quick, "repetitions": self.repetitions, "overrides": self.overrides}


@dataclass
class Suite:
    file: Path
    name: str
    description: str
    entries: list[Entry]
    policy_default: Policy = field(default_factory=Policy)
    policy_metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    correction: str = "holm"
    trend_nights: int = DEFAULT_TREND_NIGHTS
    neutral_inputs: list[str] = field(default_factory=list)
    change_points: Settings = field(default_factory=Settings)

    def policy(self, entry: Entry, metric: str, declared: dict[str, Any] | None = None) -> Policy:
        """The metric's policy; `declared` is the script's `outputs.metrics` (noiseless)."""
        meta = (declared or {}).get(metric) or {}
        noiseless = self.policy_default.noiseless or bool(meta.get("noiseless", False))
        tolerance = float(meta.get("tolerance", self.policy_default.tolerance))
        return (
            replace(self.policy_default, noiseless=noiseless, tolerance=tolerance)
            .merged(self.policy_metrics.get(metric))
            .merged(entry.policy_default)
            .merged(entry.policy_metrics.get(metric))
        )

    def neutral(self, entry: Entry) -> list[str]:
        return sorted({*self.neutral_inputs, *entry.neutral_inputs})

    def max_baseline_runs(self) -> int:
        blocks = [*self.policy_metrics.values()]
        for e in self.entries:
            blocks += [e.policy_default, *e.policy_metrics.values()]
        return max(
            [self.policy_default.baseline_runs] + [b.get("baseline_runs", 0) for b in blocks]
        )


def default_file(repo: Path) -> Path:
    return repo / "workflows" / "nightly.yaml"


def load(file: Path) -> Suite:
    """Parse and schema-check a suite file (experiments are checked by `plan`)."""
    raw = load_yaml(file)
    validate(raw, "nightly", file)
    defaults = raw.get("defaults") or {}
    pol = raw.get("policy") or {}
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for i, e in enumerate(raw["experiments"]):
        if e["name"] in seen:
            raise BadInput(
                file,
                f"$.experiments[{i}].name",
                f"each experiment once (already at $.experiments[{seen[e['name']]}])",
                e["name"],
            )
        seen[e["name"]] = i
        epol = e.get("policy") or {}
        entries.append(
            Entry(
                index=i,
                name=e["name"],
                quick=e.get("quick", defaults.get("quick", False)),
                repetitions=e.get("repetitions", defaults.get("repetitions")),
                overrides={**(defaults.get("overrides") or {}), **(e.get("overrides") or {})},
                metrics=e.get("metrics"),
                policy_default=epol.get("default") or {},
                policy_metrics=epol.get("metrics") or {},
                neutral_inputs=list(e.get("neutral_inputs") or []),
            )
        )
    return Suite(
        file=file,
        name=raw.get("name", file.stem),
        description=raw.get("description", ""),
        entries=entries,
        policy_default=Policy().merged(pol.get("default")),
        policy_metrics=pol.get("metrics") or {},
        correction=raw.get("correction", "holm"),
        trend_nights=raw.get("trend_nights", DEFAULT_TREND_NIGHTS),
        neutral_inputs=list(raw.get("neutral_inputs") or []),
        change_points=Settings.from_json(raw.get("change_points")),
    )


def _plan_entry(
    repo: Path, suite: Suite, entry: Entry, salt: str, runtime: RuntimeIdentity | None
) -> Plan:
    try:
        exp = load_experiment(repo, entry.name, entry.quick, entry.overrides)
    except BadInput as exc:
        if exc.path == "$" and exc.found == entry.name:  # no such experiment file
            raise BadInput(suite.file, f"{entry.path}.name", exc.expected, entry.name) from None
        raise
    if entry.repetitions is not None:
        exp.repetitions = entry.repetitions
    try:
        return Planner(repo, salt=salt, runtime=runtime).plan(exp)
    except BadInput as exc:
        # an override the script rejects is the suite's fault: point at the suite line
        # (the planner names an override "--set NAME", as it would for the command line)
        name = exc.path.removeprefix("--set ")
        if exc.file == exp.file and name in entry.overrides and exc.path.startswith("--set "):
            raise BadInput(
                suite.file, f"{entry.path}.overrides.{name}", exc.expected, exc.found, exc.hint
            ) from None
        raise


def plan(
    repo: Path, suite: Suite, salt: str = "", runtime: RuntimeIdentity | None = None
) -> list[Plan]:
    """Plan every entry (top-level keys salted so the night measures anew) for
    `runtime` (`Runtime.identity()`; default this machine's host)."""
    plans = [_plan_entry(repo, suite, e, salt, runtime) for e in suite.entries]
    reported: set[str] = set()
    for entry, p in zip(suite.entries, plans, strict=True):
        declared = list(p.script.metrics)
        reported.update(declared)
        table_metrics = p.experiment.metrics or declared
        for j, m in enumerate(entry.metrics or []):
            if m not in table_metrics:
                raise BadInput(
                    suite.file,
                    f"{entry.path}.metrics[{j}]",
                    f"a metric of '{entry.name}' ({', '.join(table_metrics)})",
                    m,
                )
        for j, name in enumerate(entry.neutral_inputs):
            if name not in p.script.inputs:
                raise BadInput(
                    suite.file,
                    f"{entry.path}.neutral_inputs[{j}]",
                    f"an input of '{p.script.alias}' ({', '.join(sorted(p.script.inputs))})",
                    name,
                )
        for m in entry.policy_metrics:
            if m not in declared:
                raise BadInput(
                    suite.file,
                    f"{entry.path}.policy.metrics.{m}",
                    f"a metric of '{entry.name}' ({', '.join(declared)})",
                    m,
                )
    for m in suite.policy_metrics:  # a typo here would silently apply the default
        if m not in reported:
            raise BadInput(
                suite.file,
                f"$.policy.metrics.{m}",
                "a metric reported by at least one experiment of the suite",
                m,
            )
    return plans


def compared_metrics(entry: Entry, p: Plan) -> list[str]:
    """The metrics judged for an entry: its `metrics:`, else the experiment's table."""
    return list(entry.metrics or p.experiment.metrics or p.script.metrics)
