"""edge-latency-predict (HELP): real measurements of a few tiny architectures on both
runtimes, the predictors' scores, and the feature counts against a hand count."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[3]
try:
    from efflab.plan.registry import parse_script
    from efflab.runtime.ctx import Context
except ImportError:  # framework not installed into the venv yet: use the source tree
    sys.path.insert(0, str(REPO / "src"))
    from efflab.plan.registry import parse_script
    from efflab.runtime.ctx import Context

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SCRIPT = REPO / "scripts" / "edge-latency-predict"


def _module():
    spec = importlib.util.spec_from_file_location("edge_latency_predict_run", SCRIPT / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_small_run_scores_and_records(tmp_path: Path) -> None:
    script = parse_script(SCRIPT)
    inputs = {**script.defaults(), "archs": 14, "adapt": 5, "runs": 3, "warmup": 1}
    assert not list(script.input_validator.iter_errors(inputs))
    assert script.checker(inputs) == []
    res = _module().run(Context(inputs=inputs, out_dir=tmp_path, repetition=1))
    m = res["metrics"]
    assert set(m) == set(script.metrics)
    for name in ("rho_transfer", "rho_scratch", "rho_macs", "rho_devices"):
        assert -1.0 <= m[name] <= 1.0 and math.isfinite(m[name])
    v = res["values"]
    assert len(v["source_ms"]) == len(v["target_ms"]) == 14
    assert all(t > 0 for t in v["source_ms"] + v["target_ms"])
    assert len(v["adapt_idx"]) == 5


def test_check_refuses_too_few_held_out() -> None:
    script = parse_script(SCRIPT)
    found = script.checker({**script.defaults(), "archs": 12, "adapt": 10})
    assert found and found[0][0] == "adapt"


def test_feature_counts_match_hand_count() -> None:
    mod = _module()
    arch = [{"block": "dwsep", "width": 16, "depth": 1, "kernel": 3, "expand": 1}] * 3
    f = mod.features(mod.build(arch), torch.zeros(1, 3, 32, 32))
    stem = 32 * 32 * 16 * 3 * 9
    dw = sum(s * s * 16 * 9 for s in (16, 8, 4))
    pw = sum(s * s * 16 * 16 for s in (16, 8, 4))
    assert f["kxk_macs"] == stem and f["dw_macs"] == dw and f["pw_macs"] == pw
    assert f["macs"] == stem + dw + pw + 16 * 10


def test_evaluate_ranks_a_perfect_transfer_first() -> None:
    """A target that is an exact power of the source: the adapted predictor ranks it
    as well as the source predictor does, and the adaptation set is excluded."""
    mod = _module()
    rng = np.random.default_rng(0)
    feats = [
        dict(zip(mod.FEATURES, rng.uniform(1e3, 1e6, len(mod.FEATURES)), strict=True))
        for _ in range(30)
    ]
    x = mod.design(feats)
    src = np.exp(x[:, :-1] @ rng.uniform(0.1, 1, x.shape[1] - 1) / 5)
    out = mod.evaluate(feats, src, 2 * src**1.3, adapt_idx=list(range(10)))
    assert out["rho_transfer"] > 0.99
