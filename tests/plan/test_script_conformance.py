"""Every script in the registry and every experiment in workflows/, checked one way.

One parametrized test per script (its meta.yaml loads, its defaults plan, each
declared metric has a unit and a direction) and per experiment (its `quick:` inputs
validate against the script's inputs, its own metrics are declared by the script),
instead of a hand-written loader per family. A new script or experiment is covered
the moment it exists. Planning is pure: this is part of the fast tier.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from efflab.plan.planner import Planner, load_experiment
from efflab.plan.registry import Registry

REPO = Path(__file__).resolve().parents[2]
REGISTRY = Registry.for_repo(REPO)
SCRIPTS = sorted(REGISTRY.scripts)
EXPERIMENTS = sorted(p.stem for p in (REPO / "workflows" / "experiments").glob("*.yaml"))


def test_the_registry_is_not_empty() -> None:
    assert SCRIPTS and EXPERIMENTS  # else the parametrized tests below would prove nothing


@pytest.mark.parametrize("alias", SCRIPTS)
def test_script_declares_metrics_with_units_and_plans_its_defaults(alias: str) -> None:
    script = REGISTRY.scripts[alias]
    assert (script.path / script.run).is_file(), f"{alias}: {script.run} missing"
    assert script.metrics, f"{alias}: declares no metric"
    for name, meta in script.metrics.items():
        assert isinstance(meta.get("unit"), str), f"{alias}: metric {name} has no unit"
        assert meta.get("better") in ("lower", "higher"), f"{alias}: metric {name}: better?"
    for name, schema in script.inputs.items():
        assert "default" in schema, f"{alias}: input {name} has no default"
    inv = Planner(REPO, REGISTRY).invocation(script, {}, script.meta_file, {})
    assert inv.alias == alias and len(inv.key) == 20
    assert set(inv.outputs["metrics"]) == set(script.metrics)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_quick_inputs_validate_and_metrics_are_declared(name: str) -> None:
    planner = Planner(REPO, REGISTRY)
    full = planner.plan(load_experiment(REPO, name))
    quick = planner.plan(load_experiment(REPO, name, quick=True))
    assert quick.points, f"{name}: quick mode plans nothing"
    assert len(quick.points) <= len(full.points), f"{name}: quick mode is larger"
    declared = quick.script.metrics
    for m in quick.experiment.metrics or declared:
        assert m in declared, f"{name}: metric {m} not declared by {quick.script.alias}"
        assert isinstance(declared[m]["unit"], str)
