"""infra-coldstart through run(ctx) against the real Docker engine.

Why: the cold-start claims compare start modes, so each mode must really do what it
says — a fresh container per cold sample, one running container answering warm
requests — and fail loudly (not return numbers) when a reply is wrong. Skips when no
engine or no local efflab-env/ml-cpu image is present (the docker tests build it).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO

from efflab.plan.registry import parse_script
from efflab.runtime.ctx import Context


def module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "t_infra_coldstart", REPO / "scripts" / "infra-coldstart" / "run.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _image() -> str:
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker engine")
    try:
        return module().default_image()
    except RuntimeError as exc:
        pytest.skip(str(exc))


def test_cold_and_warm_starts_reply(tmp_path: Path) -> None:
    image = _image()
    mod = module()
    script = parse_script(REPO / "scripts" / "infra-coldstart")
    res = {}
    for start in ("cold-bare", "warm"):
        full = {**script.defaults(), "start": start, "samples": 3, "deps": "", "image": image}
        assert not list(script.input_validator.iter_errors(full))
        res[start] = mod.run(Context(inputs=full, out_dir=tmp_path, script_dir=script.path))
        assert set(res[start]["metrics"]) == set(script.metrics)
        assert len(res[start]["values"]["samples_ms"]) == 3
    assert (
        res["cold-bare"]["metrics"]["start_latency_ms"] > res["warm"]["metrics"]["start_latency_ms"]
    )
    assert res["warm"]["metrics"]["image_size_mb"] > 1


def test_wrong_reply_is_an_error() -> None:
    image = _image()
    with pytest.raises(RuntimeError, match="unexpected reply|failed"):
        module().cold(image, "no_such_module_xyz")
