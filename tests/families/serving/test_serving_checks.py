"""Impossible serving parameters are rejected at plan time (schema + check.py), before
anything runs; good defaults pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
from conftest import add_family_lib  # noqa: E402

add_family_lib("serving")
try:
    from efflab.plan.registry import parse_script
except ImportError:
    sys.path.insert(0, str(REPO / "src"))
    from efflab.plan.registry import parse_script

SCRIPTS = [
    "serve-engine",
    "serve-loadgen",
    "serve-sim",
    "serve-sim-capacity",
    "serve-fit",
    "serve-calibrate",
]


def _problems(alias: str, **inputs) -> list[str]:
    """Schema errors plus check.py triples, as the planner applies them."""
    s = parse_script(REPO / "scripts" / alias)
    full = {**s.defaults(), **inputs}
    errs = [e.message for e in s.input_validator.iter_errors(full)]
    if not errs and s.checker:
        errs += [f for f, _, _ in s.checker(full)]
    return errs


@pytest.mark.parametrize("alias", SCRIPTS)
def test_defaults_are_valid(alias):
    assert _problems(alias) == []


@pytest.mark.parametrize(
    "alias,bad",
    [
        ("serve-engine", {"heads": 3}),
        ("serve-engine", {"policy": "chunked-0"}),
        ("serve-engine", {"token_budget": 0, "policy": "chunked"}),
        ("serve-engine", {"rate": "custom", "rate_rps": 0}),
        ("serve-engine", {"rate_rps": -1.0}),
        ("serve-engine", {"prompt_len_max": 500}),  # + output 64 > context 512
        ("serve-engine", {"prompt_len_min": 400}),  # min > max
        ("serve-engine", {"policy": "round-robin"}),
        ("serve-loadgen", {"scenario": "SingleStream"}),
        ("serve-loadgen", {"d_model": 100, "heads": 8}),
        ("serve-sim", {"policy": "splitwise-1p2d"}),  # 3 instances != 4
        ("serve-sim", {"power_cap": 1.5}),
        ("serve-sim", {"power_cap": 0}),
        ("serve-sim", {"rate_rps": 0}),
        ("serve-sim", {"prompt_len_max": 4000}),  # + 512 > 4096
        ("serve-sim", {"cost_model": "fitted"}),  # default lengths exceed the CPU model
        ("serve-sim", {"gpu": "tpu-v5"}),
        ("serve-sim", {"load": -0.5}),
        ("serve-sim", {"capacity_policy": "round-robin"}),
        ("serve-sim-capacity", {"policy": "splitwise-1p2d"}),  # 3 instances != 4
        ("serve-sim-capacity", {"prompt_len_max": 4000}),
        ("serve-sim-capacity", {"target": 0}),
        ("serve-sim-capacity", {"target": 1.5}),
        ("serve-sim-capacity", {"seeds_per_rate": 0}),
        ("serve-sim-capacity", {"rel_tol": 0}),
    ],
)
def test_bad_inputs_rejected(alias, bad):
    assert _problems(alias, **bad), bad


def test_cli_rejects_before_running():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "efflab",
            "run",
            "serving-schedulers",
            "--dry-run",
            "--set",
            "heads=3",
            "-q",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "heads" in r.stderr + r.stdout
