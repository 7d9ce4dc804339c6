"""Edge experiments plan as intended: shared deps, quick mode, bad inputs rejected (exit 2).

Planning is pure, so these run in milliseconds. They plan in a scratch copy of the
repo holding only the edge family and a stand-in `ml-cpu` env, so they neither need
the real env nor break when another family's script is mid-edit.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
try:
    from efflab.core.errors import BadInput
    from efflab.plan.planner import Planner, load_experiment
except ImportError:  # framework not installed into the venv yet: use the source tree
    sys.path.insert(0, str(REPO / "src"))
    from efflab.core.errors import BadInput
    from efflab.plan.planner import Planner, load_experiment


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("edge-repo")
    for src in sorted((REPO / "scripts").glob("edge-*")):
        shutil.copytree(src, root / "scripts" / src.name)
    for lib in ("edge", "edgetour"):  # edgetour: the edge-tour-* (tournament) scripts'
        shutil.copytree(REPO / "scripts" / "_lib" / lib, root / "scripts" / "_lib" / lib)
    (root / "workflows" / "experiments").mkdir(parents=True)
    for f in (REPO / "workflows" / "experiments").glob("edge-*.yaml"):
        shutil.copy(f, root / "workflows" / "experiments" / f.name)
    (root / "envs" / "ml-cpu").mkdir(parents=True)
    (root / "envs" / "ml-cpu" / "Dockerfile").write_text("FROM scratch\n")
    return root


def plan(repo: Path, name: str, quick: bool = False, **overrides: Any):
    return Planner(repo).plan(load_experiment(repo, name, quick, overrides or None))


def by_alias(p) -> dict[str, list]:
    out: dict[str, list] = {}
    for inv in p.invocations.values():
        out.setdefault(inv.alias, []).append(inv)
    return out


def test_digits_shares_dataset_training_and_quantization(repo: Path) -> None:
    p = plan(repo, "edge-digits")
    assert len(p.points) == 2 * 3 * 3
    counts = {k: len(v) for k, v in by_alias(p).items()}
    # trained once per model, quantized once per (model, precision), benched 3x each
    assert counts == {"edge-dataset": 1, "edge-train": 2, "edge-quantize": 6, "edge-bench": 18}
    bench = by_alias(p)["edge-bench"][0]
    assert bench.inputs["threads"] == 1 and bench.inputs["runs"] >= 1000
    assert bench.resources.get("exclusive") is True
    quant = by_alias(p)["edge-quantize"]
    assert {(q.inputs["model"], q.inputs["precision"]) for q in quant} == {
        (m, pr) for m in ("mlp-1024", "cnn-64") for pr in ("fp32", "int8-dynamic", "int8-static")
    }


def test_digits_quick_mode_is_smaller(repo: Path) -> None:
    p = plan(repo, "edge-digits", quick=True)
    assert len(p.points) == 6 * 3  # 6 points, timing claims keep 3 repetitions in quick
    bench = by_alias(p)["edge-bench"]
    assert all(b.inputs["runs"] < 1000 for b in bench)
    # training is not reduced: quick shares the full run's (cached) trained models
    full = plan(repo, "edge-digits")
    assert {t.key for t in by_alias(p)["edge-train"]} == {
        t.key for t in by_alias(full)["edge-train"]
    }


def test_cascade_and_macs_plans(repo: Path) -> None:
    cascade = plan(repo, "edge-cascade")
    counts = {k: len(v) for k, v in by_alias(cascade).items()}
    assert counts == {"edge-dataset": 1, "edge-train": 2, "edge-quantize": 2, "edge-cascade": 15}
    # the large model (cnn-64 fp32) is the very invocation edge-digits trains and exports
    digits = plan(repo, "edge-digits")
    shared = {i.key for i in cascade.invocations.values()} & set(digits.invocations)
    assert {digits.invocations[k].alias for k in shared} == {
        "edge-dataset",
        "edge-train",
        "edge-quantize",
    }
    macs = plan(repo, "edge-macs")
    assert len(macs.points) == 9
    assert all(i.inputs["image_size"] == 224 for i in macs.invocations.values())


@pytest.mark.parametrize(
    ("exp", "override", "field"),
    [
        ("edge-digits", {"model": "rnn-64"}, "model"),  # unknown family
        ("edge-digits", {"model": "mlp-0"}, "model"),  # width <= 0
        ("edge-digits", {"model": "mlp--3"}, "model"),
        ("edge-digits", {"precision": "int4"}, "precision"),
        ("edge-digits", {"threads": 0}, "threads"),
        ("edge-digits", {"runs": 1}, "runs"),
        ("edge-cascade", {"threshold": 1.5}, "threshold"),
        ("edge-cascade", {"small": "cnn-64"}, "large"),  # small == large: check.py
        ("edge-macs", {"model": "resnet50"}, "model"),
    ],
)
def test_bad_inputs_rejected_at_plan_time(
    repo: Path, exp: str, override: dict[str, Any], field: str
) -> None:
    with pytest.raises(BadInput) as err:
        plan(repo, exp, **override)
    assert field in str(err.value)


def test_train_check_explains_bad_models() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "edge_train_check", REPO / "scripts" / "edge-train" / "check.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.check({"model": "mlp-1024"}) == []
    assert mod.check({"model": "cnn-64"}) == []
    assert "family" in mod.check({"model": "lstm-8"})[0][1]
    assert ">= 1" in mod.check({"model": "cnn-0"})[0][1]
    assert "<=" in mod.check({"model": "mlp-100000"})[0][1]
