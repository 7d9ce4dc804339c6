"""The heavy ml-cpu env: built from its lock file offline, and a script using it runs.

One test, marked slow: a cold build (torch CPU, ONNX Runtime, scikit-learn, LoadGen
from the host-built wheelhouse) takes minutes on 2 cores; afterwards the
content-addressed tag makes it a cache hit, here and in every other project.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.docker, pytest.mark.slow]

META = """\
alias: mlprobe
uid: 00000000000000e1
tags: [demo, mlprobe]
description: Imports the ml-cpu stack and runs a tiny model through torch and ONNX Runtime.
version: "1"
env: ml-cpu
run: run.py
outputs:
  metrics:
    logit_gap: {unit: "1", better: lower}
resources:
  mem_mb: 3000
  timeout_s: 300
"""
PROBE = """\
import mlperf_loadgen, onnx, onnxruntime as ort, scipy, simpy, sklearn, torch


def run(ctx):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2).eval()
    x = torch.randn(1, 4)
    path = ctx.out_dir / "m.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=False, input_names=["x"])
    onnx.checker.check_model(onnx.load(str(path)))
    got = ort.InferenceSession(str(path)).run(None, {"x": x.numpy()})[0]
    gap = float(abs(torch.from_numpy(got) - model(x)).max())
    versions = {m.__name__: getattr(m, "__version__", "?")
                for m in (onnx, ort, scipy, simpy, sklearn, torch)}
    versions["loadgen"] = bool(mlperf_loadgen.TestSettings)
    return {"metrics": {"logit_gap": gap}, "values": versions}
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import docker

        docker.from_env(timeout=30).ping()
    except Exception:
        proc = subprocess.run(
            [str(REPO / "tools/ensure-docker.sh")], capture_output=True, text=True
        )
        if proc.returncode != 0:
            pytest.skip(f"no Docker engine could be started: {proc.stderr.strip()[-300:]}")
    from conftest import make_tiny_repo, write

    repo = make_tiny_repo(tmp_path_factory.mktemp("mlcpu") / "proj")
    shutil.copytree(
        REPO / "envs/ml-cpu", repo / "envs/ml-cpu", ignore=shutil.ignore_patterns("wheels")
    )
    write(repo / "scripts/mlprobe/meta.yaml", META)
    write(repo / "scripts/mlprobe/run.py", PROBE)
    write(repo / "workflows/experiments/ml.yaml", "name: ml\nscript: demo,mlprobe\n")
    return repo


def efflab(repo: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "efflab", "--repo", str(repo), *args],
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_ml_cpu_builds_and_runs_torch_and_onnxruntime(project: Path) -> None:
    t0 = time.monotonic()
    r = efflab(project, "env", "build", "ml-cpu", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    (row,) = json.loads(r.stdout)
    print(f"ml-cpu: {'cached' if row['cached'] else 'built'} in {time.monotonic() - t0:.1f} s")
    assert row["cached"] or row["build_s"] < 900
    lock = (project / "envs/ml-cpu/requirements.lock").read_text()
    r = efflab(project, "run", "ml", "--runtime", "docker", "--json", "-q", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (out,) = [json.loads(p.read_text()) for p in project.glob("artifacts/mlprobe/*/outputs.json")]
    assert out["runtime"] == "docker" and out["image"] == row["image_id"]
    assert out["metrics"]["logit_gap"] < 1e-5
    assert out["values"]["loadgen"] is True
    for mod, pin in (("torch", "torch==2.13.0"), ("onnxruntime", "onnxruntime==1.32.0"),
                     ("sklearn", "scikit-learn==1.9.1")):  # fmt: skip
        assert pin in lock and out["values"][mod].startswith(pin.split("==")[1])
