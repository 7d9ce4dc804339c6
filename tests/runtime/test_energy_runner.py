"""Energy meter labels and the runner's output checks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from efflab.runtime import energy
from efflab.runtime.outputs import check_outputs


def test_estimate_is_labelled_and_follows_model(monkeypatch) -> None:
    monkeypatch.setattr(energy, "RAPL_ROOT", Path("/nonexistent"))
    meter = energy.EnergyMeter()
    assert meter.method == "estimated:cpu-linear-v1"
    with meter.measure() as m:
        t0 = time.process_time()
        while time.process_time() - t0 < 0.05:
            pass
    assert m.method.startswith("estimated:")
    assert m.joules == pytest.approx(energy.estimate_joules(m.wall_s, m.cpu_s))
    assert m.cpu_s > 0.03 and m.joules > 0


INV = {
    "outputs": {
        "metrics": {
            "a": {"unit": "s", "better": "lower"},
            "b": {"unit": "s", "better": "lower", "optional": True},
        },
        "files": {"f": {}},
    }
}


def test_check_outputs(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out/x.txt").write_text("x")
    out = check_outputs(INV["outputs"], {"metrics": {"a": 1}, "files": {"f": "x.txt"}}, tmp_path)
    assert out["metrics"] == {"a": 1.0} and out["files"] == {"f": "out/x.txt"}
    bad = [
        ({"metrics": {}, "files": {"f": "x.txt"}}, "not returned"),
        ({"metrics": {"a": 1, "zz": 2}, "files": {"f": "x.txt"}}, "not declared"),
        ({"metrics": {"a": float("nan")}, "files": {"f": "x.txt"}}, "not finite"),
        ({"metrics": {"a": "fast"}, "files": {"f": "x.txt"}}, "must be a number"),
        ({"metrics": {"a": 1}, "files": {"f": "../../etc/passwd"}}, "does not exist inside"),
        ({"metrics": {"a": 1}}, "file output 'f'"),
    ]
    for result, msg in bad:
        with pytest.raises(ValueError, match=msg):
            check_outputs(INV["outputs"], result, tmp_path)
