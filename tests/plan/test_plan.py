"""Planner: expansion, stable keys, shared deps, bad input with JSON paths."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import make_tiny_repo, write

from efflab.core.errors import BadInput
from efflab.plan.planner import Planner, load_experiment, plan_experiment


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_tiny_repo(tmp_path / "p")


def test_expansion_and_shared_deps(repo: Path) -> None:
    p = plan_experiment(repo, "demo")
    assert len(p.points) == 2 * 2 * 2
    assert len({pt.key for pt in p.points}) == 8  # repetitions are distinct invocations
    gens = [i for i in p.invocations.values() if i.alias == "gen"]
    assert len(gens) == 2  # one per n, shared by scales and repetitions
    assert p.param_names() == ["n", "scale"]


def test_keys_are_stable_and_content_addressed(repo: Path) -> None:
    k1 = [pt.key for pt in plan_experiment(repo, "demo").points]
    assert k1 == [pt.key for pt in plan_experiment(repo, "demo").points]
    (repo / "scripts/gen/run.sh").write_text(
        (repo / "scripts/gen/run.sh").read_text() + "\n# change\n"
    )
    k2 = [pt.key for pt in plan_experiment(repo, "demo").points]
    assert set(k1).isdisjoint(k2)  # a dep's change propagates to every dependent key


def test_template_passes_typed_value(repo: Path) -> None:
    p = plan_experiment(repo, "demo")
    gen = next(i for i in p.invocations.values() if i.alias == "gen")
    assert isinstance(gen.inputs["n"], int)


def test_quick_and_overrides(repo: Path) -> None:
    assert len(plan_experiment(repo, "demo", quick=True).points) == 4
    p = plan_experiment(repo, "demo", overrides={"n": 5})
    assert {pt.params.get("n") for pt in p.points} == {None}
    assert {i.inputs["n"] for i in p.invocations.values()} == {5}


def test_salt_changes_only_top_level_keys(repo: Path) -> None:
    a = plan_experiment(repo, "demo", salt="night-1")
    b = plan_experiment(repo, "demo", salt="night-2")
    assert {pt.key for pt in a.points}.isdisjoint({pt.key for pt in b.points})
    gens = lambda p: {i.key for i in p.invocations.values() if i.alias == "gen"}  # noqa: E731
    assert gens(a) == gens(b)


@pytest.mark.parametrize(
    ("yaml_text", "path", "expected"),
    [
        ("name: demo\nscript: demo,square\ngrid: {n: [2, 'x']}\n", "$.grid.n[1]", "integer"),
        ("name: demo\nscript: demo,square\ngrid: {n: [0]}\n", "$.grid.n[0]", ">= 1"),
        ("name: demo\nscript: demo,square\ninputs: {nope: 1}\n", "$.inputs.nope", "an input"),
        ("name: demo\nscript: demo\n", "$.script", "exactly one"),
        ("name: demo\nscript: demo,square\nrepetitions: 0\n", "$.repetitions", ">= 1"),
        ("name: demo\nscript: demo,square\nmetrics: [nope]\n", "$.metrics[0]", "a metric"),
        (
            "name: demo\nscript: demo,square\npoints: [{scale: true}]\n",
            "$.points[0].scale",
            "number",
        ),
    ],
)
def test_bad_experiment_names_path(repo: Path, yaml_text: str, path: str, expected: str) -> None:
    write(repo / "workflows/experiments/demo.yaml", yaml_text)
    with pytest.raises(BadInput) as e:
        plan_experiment(repo, "demo")
    assert e.value.path == path, str(e.value)
    assert expected in str(e.value)
    assert str(e.value.file).endswith("demo.yaml")


def test_unknown_experiment(repo: Path) -> None:
    with pytest.raises(BadInput) as e:
        plan_experiment(repo, "nope")
    assert "newest first: demo" in str(e.value)


def test_check_py_rejects_impossible_combination(repo: Path) -> None:
    write(
        repo / "scripts/square/check.py",
        """\
        def check(inputs):
            if inputs["scale"] > 100:
                return [("scale", "a scale <= 100", inputs["scale"])]
            return []
        """,
    )
    write(
        repo / "workflows/experiments/demo.yaml",
        "name: demo\nscript: demo,square\ngrid: {scale: [1.0, 500.0]}\n",
    )
    with pytest.raises(BadInput) as e:
        plan_experiment(repo, "demo")
    assert e.value.path == "$.grid.scale" and "<= 100" in str(e.value)


def test_ten_thousand_points_plan_fast(repo: Path) -> None:
    write(
        repo / "workflows/experiments/big.yaml",
        "name: big\nscript: demo,square\ngrid:\n  n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
        "  scale: [" + ", ".join(f"{i}.5" for i in range(100)) + "]\nrepetitions: 10\n",
    )
    t0 = time.perf_counter()
    p = Planner(repo).plan(load_experiment(repo, "big"))
    elapsed = time.perf_counter() - t0
    assert len(p.points) == 10_000
    assert elapsed < 30  # generous: speed goals live in bench/, this only guards blow-ups


def test_resources_follow_inputs(repo: Path) -> None:
    meta = repo / "scripts/square/meta.yaml"
    meta.write_text(meta.read_text().replace("timeout_s: 60", 'timeout_s: 60\n  cpus: "{n}"'))
    p = plan_experiment(repo, "demo")
    assert {i.resources["cpus"] for i in p.invocations.values() if i.alias == "square"} == {2, 3}
    meta.write_text(meta.read_text().replace('cpus: "{n}"', 'cpus: "{nope}"'))
    with pytest.raises(BadInput) as e:
        plan_experiment(repo, "demo")
    assert e.value.path == "$.resources"


def test_points_without_grid_add_no_default_point(repo: Path) -> None:
    write(
        repo / "workflows/experiments/demo.yaml",
        "name: demo\nscript: demo,square\npoints: [{n: 2}, {n: 3, scale: 2.0}]\n",
    )
    p = plan_experiment(repo, "demo")
    assert [pt.params for pt in p.points] == [{"n": 2}, {"n": 3, "scale": 2.0}]
    write(repo / "workflows/experiments/demo.yaml", "name: demo\nscript: demo,square\n")
    assert [pt.params for pt in plan_experiment(repo, "demo").points] == [{}]
