"""train-lm through its run(ctx) with real torch and the framework's real Context.

Why these tests: the training experiment's claims (bf16 vs fp32, checkpointing vs not)
are only meaningful if (1) every metric the table reports is produced and finite,
(2) bf16 really runs in bf16 (autocast silently does nothing if misapplied), and
(3) checkpointing is a pure memory/compute trade that leaves training unchanged.
Sizes are tiny so the whole file runs in a few seconds on 2 cores.
"""

from __future__ import annotations

import ast
import importlib.util
import math
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
try:
    from efflab.plan.registry import parse_script
    from efflab.runtime.ctx import BadInput, Context
    from efflab.runtime.outputs import check_outputs
except ImportError:  # framework not installed into the venv yet: use the source tree
    sys.path.insert(0, str(REPO / "src"))
    from efflab.plan.registry import parse_script
    from efflab.runtime.ctx import BadInput, Context
    from efflab.runtime.outputs import check_outputs

pytest.importorskip("torch")

SCRIPT = REPO / "scripts" / "train-lm"
TINY = {"d_model": 32, "layers": 2, "heads": 2, "seq_len": 32, "batch_size": 2, "vocab_size": 64}


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("train_lm_test_run", SCRIPT / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUN = _module()


def call(tmp: Path, **inputs: Any) -> dict[str, Any]:
    """Validate like the planner, run run(ctx), then check outputs like the runner does."""
    script = parse_script(SCRIPT)
    full = {**script.defaults(), **TINY, **inputs}
    errors = list(script.input_validator.iter_errors(full))
    assert not errors, errors[0].message
    assert script.checker(full) == []
    tmp.mkdir(parents=True, exist_ok=True)
    ctx = Context(inputs=full, out_dir=tmp, script_dir=SCRIPT)
    result = RUN.run(ctx)
    inv = {"outputs": {"metrics": script.metrics}}
    clean = check_outputs(
        inv["outputs"], result, tmp.parent
    )  # raises on missing / non-finite metrics
    return {**clean, "energy_spans": [vars(m) for m in ctx.energy.spans]}


def test_metrics_present_finite_and_energy_labelled(tmp_path: Path) -> None:
    out = call(tmp_path / "out", steps=3, warmup_steps=1)
    m, v = out["metrics"], out["values"]
    declared = parse_script(SCRIPT).metrics
    assert set(m) == set(declared)  # final_loss is optional but must be there when finite
    assert all(math.isfinite(x) for x in m.values())
    assert m["loss_is_finite"] == 1.0 and 0 < m["final_loss"] < 10
    assert m["tokens_per_s"] > 0 and m["step_time_median_s"] > 0 and m["energy_per_step_j"] > 0
    assert m["peak_rss_mb"] >= m["peak_rss_above_baseline_mb"] >= 0
    assert v["timed_steps"] == 2 and len(v["losses"]) == 3
    # One energy span (the timed steps); an estimate must say so, never pass as measured.
    (span,) = out["energy_spans"]
    assert v["energy_method"] == span["method"]
    assert span["method"].startswith("estimated:") or span["method"] == "measured:rapl"
    assert m["energy_per_step_j"] == pytest.approx(span["joules"] / 2)


def test_bf16_runs_in_bf16_and_fp32_does_not(tmp_path: Path) -> None:
    fp32 = call(tmp_path / "fp32", steps=2, warmup_steps=0, precision="fp32")
    bf16 = call(tmp_path / "bf16", steps=2, warmup_steps=0, precision="bf16")
    assert fp32["values"]["autocast_dtype_observed"] == "torch.float32"
    assert bf16["values"]["autocast_dtype_observed"] == "torch.bfloat16"
    assert bf16["values"]["precision"] == "bf16"
    # Same seed, same data: only the arithmetic differs, so losses are close, not equal.
    lf, lb = fp32["values"]["losses"], bf16["values"]["losses"]
    assert lf != lb
    assert lb[0] == pytest.approx(lf[0], rel=2e-2)


def test_checkpointing_keeps_the_fp32_loss_trajectory() -> None:
    """Recomputation must reproduce the forward exactly: identical losses, fewer saved bytes."""
    cfg = {**parse_script(SCRIPT).defaults(), **TINY, "steps": 4, "warmup_steps": 1}
    off = RUN.train({**cfg, "checkpointing": "off"}, seed=3)
    on = RUN.train({**cfg, "checkpointing": "on"}, seed=3)
    assert on["losses"] == pytest.approx(off["losses"], rel=1e-5, abs=1e-6)
    assert off["losses"][-1] < off["losses"][0]  # and it does train
    assert on["saved_activation_bytes"] < 0.5 * off["saved_activation_bytes"]
    # ... but not by forgetting what checkpoint keeps: every block's fp32 input is counted.
    block_input = cfg["batch_size"] * cfg["seq_len"] * cfg["d_model"] * 4
    assert on["saved_activation_bytes"] >= cfg["layers"] * block_input


BAD = [
    ({"d_model": 30, "heads": 4}, "d_model"),
    ({"steps": 0}, "steps"),
    ({"precision": "fp16"}, "precision"),
    ({"checkpointing": "sometimes"}, "checkpointing"),
    ({"steps": 2, "warmup_steps": 2}, "warmup_steps"),
]


@pytest.mark.parametrize(("bad", "field"), BAD)
def test_bad_inputs_rejected_by_check_and_run(tmp_path: Path, bad: dict, field: str) -> None:
    script = parse_script(SCRIPT)
    full = {**script.defaults(), **bad}
    assert field in [f for f, _, _ in script.checker(full)]
    with pytest.raises(BadInput) as err:
        RUN.run(Context(inputs=full, out_dir=tmp_path, script_dir=SCRIPT))
    assert err.value.field == field


@pytest.mark.parametrize(("bad", "field"), BAD[1:4])
def test_schema_rejects_out_of_range_values(bad: dict, field: str) -> None:
    script = parse_script(SCRIPT)
    errors = list(script.input_validator.iter_errors({**script.defaults(), **bad}))
    assert errors and any(field in list(e.path) for e in errors)


def test_check_is_pure_and_passes_defaults() -> None:
    script = parse_script(SCRIPT)
    assert script.checker(script.defaults()) == []
    tree = ast.parse((SCRIPT / "check.py").read_text())
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__"}, imported  # the planner calls it for every point
