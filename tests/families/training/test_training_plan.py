"""training-precision plans as intended: a 2x2 grid x 3 repetitions, exclusive, quick mode
smaller, and impossible inputs rejected at plan time (exit 2) before anything runs.

Planning is pure, so these take milliseconds. They plan in a scratch copy of the repo
holding only the training family and a stand-in ``ml-cpu`` env, so they neither need
the real env nor break while another family's script is mid-edit.
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
    root = tmp_path_factory.mktemp("training-repo")
    for src in sorted((REPO / "scripts").glob("train-*")):
        shutil.copytree(src, root / "scripts" / src.name)
    shutil.copytree(REPO / "scripts" / "_lib", root / "scripts" / "_lib")  # includes
    (root / "workflows" / "experiments").mkdir(parents=True)
    for f in (REPO / "workflows" / "experiments").glob("training-*.yaml"):
        shutil.copy(f, root / "workflows" / "experiments" / f.name)
    (root / "envs" / "ml-cpu").mkdir(parents=True)
    (root / "envs" / "ml-cpu" / "Dockerfile").write_text("FROM scratch\n")
    return root


def plan(repo: Path, quick: bool = False, **overrides: Any):
    exp = load_experiment(repo, "training-precision", quick, overrides or None)
    return Planner(repo).plan(exp)


def test_precision_grid_with_repetitions(repo: Path) -> None:
    p = plan(repo)
    assert len(p.points) == 12 and len(p.invocations) == 12
    combos = {(i.inputs["precision"], i.inputs["checkpointing"]) for i in p.invocations.values()}
    assert combos == {(a, b) for a in ("fp32", "bf16") for b in ("off", "on")}
    assert {i.repetition for i in p.invocations.values()} == {0, 1, 2}
    inv = next(iter(p.invocations.values()))
    assert inv.alias == "train-lm" and inv.env == "ml-cpu"
    assert inv.inputs["threads"] == 1
    assert inv.resources.get("exclusive") is True  # timings must not share the cores
    assert inv.inputs["d_model"] % inv.inputs["heads"] == 0


def test_quick_mode_is_smaller(repo: Path) -> None:
    full, quick = plan(repo), plan(repo, quick=True)
    assert len(quick.points) == 4 * 3  # 4 points; timing claims keep 3 repetitions in quick
    a, b = next(iter(full.invocations.values())), next(iter(quick.invocations.values()))
    work = ("d_model", "layers", "seq_len", "batch_size", "steps")
    assert all(b.inputs[k] <= a.inputs[k] for k in work)
    assert any(b.inputs[k] < a.inputs[k] for k in work)


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"d_model": 190}, "d_model"),  # not a multiple of heads=4: check.py
        ({"heads": 5}, "d_model"),
        ({"steps": 0}, "steps"),  # schema minimum
        ({"precision": "fp16"}, "precision"),  # schema enum
        ({"checkpointing": "yes"}, "checkpointing"),
        ({"warmup_steps": 8}, "warmup_steps"),  # == steps: nothing left to time
    ],
)
def test_bad_inputs_rejected_at_plan_time(repo: Path, override: dict, field: str) -> None:
    with pytest.raises(BadInput) as err:
        plan(repo, **override)
    assert field in str(err.value)
